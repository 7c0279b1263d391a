"""Task mixing: which task each batch of an epoch trains.

joint        every batch trains every task its sentences are labelled for (one encoder pass)
alternate    one batch of each task in turn
proportional tasks drawn in proportion to their number of labelled sentences
temperature  tasks drawn with p ~ n^(1/T): T=1 is proportional, large T tends to uniform
"""

import numpy as np

from .config import TASK_SAMPLING


def _batches(indices, batch_size, rng, lengths=None):
    """Shuffle, then (optionally) sort by length inside chunks of 50 batches to cut padding."""
    idx = rng.permutation(indices)
    if lengths is None:
        return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    out, chunk = [], 50 * batch_size
    for c in range(0, len(idx), chunk):
        part = idx[c : c + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        out += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def register_rows(groups, temperature: float, rng) -> np.ndarray:
    """One epoch's rows drawn by register: as many rows as the data has, register g's share p_g ~ n_g^(1/T)
    (T=1: proportional, as without it; large T: every register alike). A register drawn more often than it
    has rows repeats them (shuffled); one drawn less uses a random part. Rows without a register keep their
    own share, like one more register."""
    keys = np.array(["" if g is None else str(g) for g in groups])
    names, inverse, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    p = sizes ** (1.0 / temperature)
    p /= p.sum()
    counts = np.floor(p * len(keys)).astype(int)
    counts[np.argsort(-(p * len(keys) - counts))[: len(keys) - counts.sum()]] += 1  # largest remainders
    rows = []
    for g, k in enumerate(counts):
        members = rng.permutation(np.flatnonzero(inverse == g))
        reps = -(-k // len(members))  # ceil: every row once before any row twice
        rows.append(np.concatenate([rng.permutation(members) for _ in range(reps)])[:k] if reps > 1 else members[:k])
    return np.concatenate(rows)


def epoch_plan(
    label_ids: dict, batch_size: int, strategy: str, rng, temperature: float = 2.0, lengths=None, rows=None
) -> list[tuple]:
    """[(tasks, indices), ...] for one epoch. `label_ids` is {task: array of label ids, -1 = none};
    `rows`: this epoch's rows (e.g. from register_rows, repeats allowed); default every row once."""
    if strategy not in TASK_SAMPLING:
        raise ValueError(f"task_sampling must be one of {', '.join(TASK_SAMPLING)}; got {strategy!r}")
    tasks = list(label_ids)
    if rows is None:
        labelled = {t: np.flatnonzero(np.asarray(label_ids[t]) >= 0) for t in tasks}
    else:
        rows = np.asarray(rows)
        labelled = {t: rows[np.asarray(label_ids[t])[rows] >= 0] for t in tasks}
    if strategy == "joint":
        rows = np.arange(len(next(iter(label_ids.values())))) if rows is None else rows
        any_label = rows[np.any([np.asarray(label_ids[t])[rows] >= 0 for t in tasks], axis=0)]
        return [(tuple(tasks), b) for b in _batches(any_label, batch_size, rng, lengths)]
    per_task = {t: _batches(labelled[t], batch_size, rng, lengths) for t in tasks if len(labelled[t])}
    if strategy == "alternate":
        plan, queues = [], {t: list(b) for t, b in per_task.items()}
        while any(queues.values()):
            for t in per_task:
                if queues[t]:
                    plan.append(((t,), queues[t].pop(0)))
        return plan
    if strategy == "proportional":
        plan = [((t,), b) for t, bs in per_task.items() for b in bs]
        return [plan[i] for i in rng.permutation(len(plan))]
    # temperature: as many steps as proportional, tasks drawn by p ~ n^(1/T), recycling small tasks
    names = list(per_task)
    sizes = np.array([len(labelled[t]) for t in names], dtype=float)
    p = sizes ** (1.0 / temperature)
    p /= p.sum()
    total = sum(len(b) for b in per_task.values())
    queues, plan = {t: list(per_task[t]) for t in names}, []
    for t in rng.choice(names, size=total, p=p):
        if not queues[t]:
            queues[t] = _batches(labelled[t], batch_size, rng, lengths)
        plan.append(((t,), queues[t].pop(0)))
    return plan
