"""Sweeps: train a list of configurations on the same data with several seeds; per run, test accuracy
and macro-F1 per task, trainable parameters and training time. Summaries, tables and the results file
are mtl/results.py's; `python -m mtl sweep` writes them as one JSON file plus a Markdown table."""

import time

import numpy as np

from .config import TASK_SAMPLING, TrainConfig
from .data import Dataset
from .encoder import encode
from .errors import ConfigError
from .evaluate import evaluate
from .freeze import count_trainable, parse_freeze
from .model import new_model
from .results import config_key, summarise
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
        "mixing": [{"name": f"{s}, equal weights", "task_sampling": s, "freeze": "bottom:2"} for s in TASK_SAMPLING]
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
        done[config_key(cfg), r["seed"]] = {k: v for k, v in r.items() if k not in ("sweep", "name", "config", "seed")}
    for sweep in names:
        for cfg in available[sweep]:
            key = config_key(cfg)
            for seed in range(seeds):
                if stop is not None and stop.is_set():
                    return
                if (key, seed) not in done or (cfg.get("probe_encoder") and "encoder_probe" not in done[key, seed]):
                    done[key, seed] = run_one(cfg, seed, epochs, train_data, val_data, test_data, stop, model_config)
                record = {"sweep": sweep, "name": cfg["name"], "config": cfg, "seed": seed, **done[key, seed]}
                runs.append(record)
                yield "run", record
    yield "done", {"runs": runs, "summary": summarise(runs)}
