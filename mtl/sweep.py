"""Sweeps: train a list of configurations on the same data with several seeds and report, per
task, the mean and standard deviation of test accuracy and macro-F1, trainable parameters and
training time. `python -m mtl sweep` writes one JSON file plus a Markdown table; the app's
Experiments tab reads the JSON."""

import json
import statistics
import time
from pathlib import Path

import numpy as np

from .config import TrainConfig
from .data import Dataset
from .encoder import encode
from .errors import ConfigError, DataError
from .evaluate import evaluate
from .freeze import count_trainable, parse_freeze
from .model import new_model
from .train import train


def sweep_configs(n_layers: int = 6) -> dict[str, list[dict]]:
    """The named sweeps. Every config trains both tasks with full fine-tuning unless it says otherwise."""
    return {
        "freeze": [
            {"name": "entire network frozen", "freeze": "all"},
            {"name": "encoder frozen (heads train)", "freeze": "backbone"},
            # the same, trained to convergence: cheap with the cache, and the fair frozen-encoder number
            {"name": "encoder frozen, heads trained 10x longer", "freeze": "backbone", "epochs_factor": 10},
            {"name": "topic head frozen", "freeze": "head.topic", "probe_encoder": True},
            {"name": "sentiment head frozen", "freeze": "head.sentiment", "probe_encoder": True},
            {"name": "nothing frozen", "freeze": "none", "probe_encoder": True},
        ],
        "layers": [{"name": f"bottom:{k}", "freeze": f"bottom:{k}", "layers_frozen": k} for k in range(n_layers + 1)]
        + [{"name": "nothing frozen", "freeze": "none", "layers_frozen": -1}],
        "tasks": [
            {"name": "topic only", "tasks": ["topic"]},
            {"name": "sentiment only", "tasks": ["sentiment"]},
            {"name": "nothing frozen", "freeze": "none"},
            # each task gets its own batches: as many updates per task as its single-task model
            {"name": "both tasks, alternate batches", "freeze": "none", "task_sampling": "alternate"},
            {"name": "linear probe (logistic regression on frozen embeddings)", "kind": "probe"},
        ],
        "mixing": [
            {"name": f"{s}, equal weights", "task_sampling": s, "freeze": "bottom:2"}
            for s in ("joint", "alternate", "proportional", "temperature")
        ]
        + [
            {
                "name": "joint, uncertainty weights",
                "task_sampling": "joint",
                "loss_weighting": "uncertainty",
                "freeze": "bottom:2",
            }
        ],
    }


def linear_probe(encoder, train_data: Dataset, test_data: Dataset, tasks) -> dict:
    """Logistic regression on frozen embeddings: the baseline many people would try first."""
    from sklearn.linear_model import LogisticRegression

    from .metrics import accuracy, macro_f1

    x_train, x_test = encode(encoder, train_data.texts), encode(encoder, test_data.texts)
    out = {}
    for t in tasks:
        y_tr, y_te = np.array(train_data.label_ids(t)), np.array(test_data.label_ids(t))
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(x_train[y_tr >= 0], y_tr[y_tr >= 0])
        pred = clf.predict(x_test[y_te >= 0])
        out[t] = {
            "accuracy": accuracy(y_te[y_te >= 0], pred),
            "macro_f1": macro_f1(y_te[y_te >= 0], pred, len(train_data.label_sets[t])),
        }
    return out


def run_one(cfg: dict, seed: int, epochs: int, train_data, val_data, test_data, stop=None, model_config=None) -> dict:
    """Train one configuration with one seed; test metrics and costs."""
    tasks = cfg.get("tasks") or list(train_data.tasks)
    tr, va, te = (d.restrict(tasks) for d in (train_data, val_data, test_data))
    model = new_model(tr.tasks, model_config, seed=seed, device="auto")
    t0 = time.perf_counter()
    if cfg.get("kind") == "probe":
        test = linear_probe(model.encoder, tr, te, tasks)
        trainable = sum(len(tr.label_sets[t]) * (model.encoder.get_embedding_dimension() + 1) for t in tasks)
        return {"test": test, "trainable_params": trainable, "seconds": time.perf_counter() - t0}
    config = TrainConfig(
        epochs=epochs * cfg.get("epochs_factor", 1),
        seed=seed,
        freeze=cfg.get("freeze", "none"),
        task_sampling=cfg.get("task_sampling", "joint"),
        loss_weighting=cfg.get("loss_weighting", "equal"),
    )
    trainable = count_trainable(model, parse_freeze(config.freeze, model))
    done = list(train(model, tr, va, config, stop=stop))[-1]
    seconds = time.perf_counter() - t0
    metrics = evaluate(model, te)
    result = {
        "test": {t: {k: m[k] for k in ("accuracy", "macro_f1")} for t, m in metrics.items()},
        "trainable_params": trainable,
        "seconds": seconds,
        "steps": done["steps"],
    }
    if cfg.get("probe_encoder"):  # what training did to the shared encoder, task by task
        result["encoder_probe"] = linear_probe(model.encoder, tr, te, tasks)
    return result


def _mean_std(values):
    values = [v for v in values if v is not None]
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(runs: list[dict]) -> list[dict]:
    """One row per (sweep, config): mean and std over seeds of every metric."""
    rows = {}
    for r in runs:
        rows.setdefault((r["sweep"], r["name"]), []).append(r)
    out = []
    for (sweep, name), group in rows.items():
        first = group[0]
        row = {
            "sweep": sweep,
            "name": name,
            "config": first["config"],
            "seeds": [g["seed"] for g in group],
            "trainable_params": first["trainable_params"],
            "seconds": _mean_std([g["seconds"] for g in group]),
            "test": {},
        }
        for task in first["test"]:
            row["test"][task] = {k: _mean_std([g["test"][task][k] for g in group]) for k in ("accuracy", "macro_f1")}
        if "encoder_probe" in first:
            row["encoder_probe"] = {
                t: _mean_std([g["encoder_probe"][t]["accuracy"] for g in group]) for t in first["encoder_probe"]
            }
        out.append(row)
    return out


def markdown(summary: list[dict]) -> str:
    tasks = sorted({t for row in summary for t in row["test"]})
    lines = []
    for sweep in dict.fromkeys(row["sweep"] for row in summary):
        lines += [
            f"### {sweep}",
            "",
            "| setting | " + " | ".join(f"{t} acc | {t} F1" for t in tasks) + " | trainable params | train time |",
            "|---|" + "---|---|" * len(tasks) + "---|---|",
        ]
        for row in (r for r in summary if r["sweep"] == sweep):
            cells = []
            for t in tasks:
                m = row["test"].get(t)
                cells += (
                    ["–", "–"]
                    if m is None
                    else [
                        f"{m['accuracy']['mean']:.3f} ± {m['accuracy']['std']:.3f}",
                        f"{m['macro_f1']['mean']:.3f} ± {m['macro_f1']['std']:.3f}",
                    ]
                )
            lines.append(
                f"| {row['name']} | "
                + " | ".join(cells)
                + f" | {row['trainable_params']:,} | {row['seconds']['mean']:.0f} s |"
            )
        lines.append("")
        if sweep == "layers":
            lines += layer_shares(summary, tasks)
    distinct = {_config_key(r["config"]): r for r in summary}.values()  # a setting in several sweeps ran once
    runs = sum(len(r["seeds"]) for r in distinct)
    minutes = sum(r["seconds"]["mean"] * len(r["seeds"]) for r in distinct) / 60
    lines.append(f"{runs} distinct runs, {minutes:.0f} minutes of training in all.")
    return "\n".join(lines)


def layer_f1(summary: list[dict]) -> dict[int, dict[str, float]]:
    """The layer freezing curve of a sweep summary: {K: {task: mean test macro-F1}}, K = -1 for nothing
    frozen (the embeddings train too)."""
    return {
        r["config"]["layers_frozen"]: {t: m["macro_f1"]["mean"] for t, m in r["test"].items()}
        for r in summary
        if r["sweep"] == "layers" and "layers_frozen" in r["config"]
    }


def layer_shares(summary: list[dict], tasks: list[str]) -> list[str]:
    """The layer curve against full fine-tuning, two ways: the macro-F1 of bottom:K as a share of full
    fine-tuning's (how Lee et al. state their result), and the share of the gain that fine-tuning adds
    over the frozen encoder (bottom:N) that bottom:K recovers."""
    f1 = layer_f1(summary)
    ks = sorted(k for k in f1 if k >= 0)
    if -1 not in f1 or not ks:
        return []
    full, frozen = f1[-1], f1[ks[-1]]
    head = " | ".join(f"{t}: share of full F1 | {t}: share of the gain" for t in tasks)
    lines = [f"| K | {head} |", "|---|" + "---|---|" * len(tasks)]
    for k in ks:
        cells = []
        for t in tasks:
            gain = full[t] - frozen[t]
            cells += [f"{f1[k][t] / full[t]:.1%}", f"{(f1[k][t] - frozen[t]) / gain:.0%}" if gain > 0 else "–"]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines + [""]


def run_sweeps(
    names, seeds: int, epochs: int, train_data, val_data, test_data, stop=None, model_config=None, previous=()
):
    """Yields ("run", record) after each run, then ("done", summary). Identical configs run once, and
    runs in `previous` (records of an earlier, interrupted sweep with the same settings) are reused."""
    available = sweep_configs()
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"unknown sweep(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    if not 1 <= seeds <= 10:
        raise ConfigError(f"seeds must be between 1 and 10; got {seeds}")
    runs, done = [], {}
    for r in previous:
        cfg = r["config"]
        done[_config_key(cfg), r["seed"]] = {k: v for k, v in r.items() if k not in ("sweep", "name", "config", "seed")}
    for sweep in names:
        for cfg in available[sweep]:
            key = _config_key(cfg)
            for seed in range(seeds):
                if stop is not None and stop.is_set():
                    return
                if (key, seed) not in done or (cfg.get("probe_encoder") and "encoder_probe" not in done[key, seed]):
                    done[key, seed] = run_one(cfg, seed, epochs, train_data, val_data, test_data, stop, model_config)
                record = {"sweep": sweep, "name": cfg["name"], "config": cfg, "seed": seed, **done[key, seed]}
                runs.append(record)
                yield "run", record
    yield "done", {"runs": runs, "summary": summarise(runs)}


def _config_key(cfg: dict) -> str:
    return json.dumps(
        {k: v for k, v in cfg.items() if k not in ("name", "layers_frozen", "probe_encoder")}, sort_keys=True
    )


def read_results(path) -> dict:
    """A results file written by write_results, or a one-line DataError saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such results file (python -m mtl sweep writes one)")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not a results file ({e})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("runs"), list):
        raise DataError(f"{path}: not a results file (no list of runs)")
    try:
        payload["summary"] = summarise(payload["runs"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path}: a run in it is malformed ({type(e).__name__}: {e})") from None
    return payload


def write_results(path, payload: dict) -> tuple[Path, Path]:
    from .checkpoint import _write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    md = path.with_suffix(".md")
    _write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2) + "\n"))
    _write_atomic(md, lambda tmp: Path(tmp).write_text(markdown(payload["summary"]) + "\n"))
    return path, md
