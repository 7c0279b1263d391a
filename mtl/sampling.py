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


def epoch_plan(
    label_ids: dict, batch_size: int, strategy: str, rng, temperature: float = 2.0, lengths=None
) -> list[tuple]:
    """[(tasks, indices), ...] for one epoch. `label_ids` is {task: array of label ids, -1 = none}."""
    if strategy not in TASK_SAMPLING:
        raise ValueError(f"task_sampling must be one of {', '.join(TASK_SAMPLING)}; got {strategy!r}")
    tasks = list(label_ids)
    labelled = {t: np.flatnonzero(np.asarray(label_ids[t]) >= 0) for t in tasks}
    if strategy == "joint":
        any_label = np.flatnonzero(np.any([np.asarray(label_ids[t]) >= 0 for t in tasks], axis=0))
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
