"""Sweeps: train a list of configurations on the same data with several seeds; per run, test accuracy
and macro-F1 per task, trainable parameters and training time. Summaries, tables and the results file
are mtl/results.py's; `python -m mtl sweep` writes them as one JSON file plus a Markdown table.

The `loro` sweep (leave one register out) measures transfer instead: for every register of the data, train on
all the others and test on every sentence of the one left out, the project's stand-in for text it has never seen."""

import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from .config import TASK_SAMPLING, TrainConfig
from .data import Dataset
from .encoder import encode
from .errors import ConfigError, DataError
from .evaluate import evaluate
from .freeze import count_trainable, parse_freeze
from .model import new_model
from .predictions import file_slug, write_mistakes_csv
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
        # transfer recipes, scored by leave-one-register-out (run_loro); needs data with a register column
        "loro": [
            {
                "name": "v1 only, bottom:2, 5 epochs (the shipped recipe)",
                "freeze": "bottom:2",
                "epochs": 5,
                "train_groups": ["crafted"],
            },
            {"name": "bottom:2, 5 epochs", "freeze": "bottom:2", "epochs": 5},
            {"name": "encoder frozen, heads 30 epochs", "freeze": "backbone", "epochs": 30},
            # cheap screens of two ideas on the cached heads-only path (minutes, not hours, on a CPU)
            {
                "name": "heads only 30 epochs, zero-shot head start",
                "freeze": "backbone",
                "epochs": 30,
                "head_init": "labels",
            },
            {
                "name": "heads only 30 epochs, registers by temperature 2",
                "freeze": "backbone",
                "epochs": 30,
                "register_sampling": "temperature",
            },
            {"name": "embeddings frozen (bottom:0), 5 epochs", "freeze": "bottom:0", "epochs": 5},
            {
                "name": "embeddings frozen (bottom:0), 5 epochs, zero-shot head start",
                "freeze": "bottom:0",
                "epochs": 5,
                "head_init": "labels",
            },
            {
                "name": "bottom:2, 5 epochs, zero-shot head start",
                "freeze": "bottom:2",
                "epochs": 5,
                "head_init": "labels",
            },
            {"name": "bottom:2, 5 epochs, L2-SP 0.01", "freeze": "bottom:2", "epochs": 5, "l2sp": 0.01},
            # with Adam at lr 5e-5 a weight moves at most lr × steps (~0.05 in 1,000 steps), so 0.01 pulls too weakly
            {"name": "bottom:2, 5 epochs, L2-SP 1", "freeze": "bottom:2", "epochs": 5, "l2sp": 1.0},
            {
                "name": "bottom:2, 5 epochs, registers by temperature 2",
                "freeze": "bottom:2",
                "epochs": 5,
                "register_sampling": "temperature",
            },
            {"name": "bottom:2, 3 epochs, encoder lr 1e-4", "freeze": "bottom:2", "epochs": 3, "lr_encoder": 1e-4},
        ],
    }


TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def train_config(cfg: dict, seed: int, epochs: int) -> TrainConfig:
    """The TrainConfig of a sweep configuration: its TrainConfig fields as given, `epochs` unless it names its own
    (times its epochs_factor)."""
    options = {k: v for k, v in cfg.items() if k in TRAIN_FIELDS}
    options["epochs"] = cfg.get("epochs", epochs) * cfg.get("epochs_factor", 1)
    return TrainConfig(**{**options, "seed": seed})


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
    config = train_config({"freeze": "none", **cfg}, seed, epochs)
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
    names,
    seeds: int,
    epochs: int,
    train_data,
    val_data,
    test_data,
    stop=None,
    model_config=None,
    previous=(),
    only=None,
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
    if only and not any(select(available[sweep], only) for sweep in names):
        raise ConfigError(f"--only {' '.join(only)!r} matches no configuration of {', '.join(names)}")
    for sweep in names:
        for cfg in select(available[sweep], only):
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


def select(configs: list[dict], only) -> list[dict]:
    """The configurations --only picks from `configs`: all without --only; a TEXT that is the whole name
    of one of them picks that one alone, any other TEXT every name that contains it."""
    if not only:
        return list(configs)
    names = {c["name"] for c in configs}
    return [c for c in configs if any(c["name"] == o if o in names else o in c["name"] for o in only)]


def loro_plan(cfg: dict, registers: list[str]) -> list[tuple[list[str], list[str]]]:
    """[(training registers, held-out registers tested)]: one model per held-out register, or, for a config that
    names its `train_groups`, one model tested on every register it did not train on."""
    if cfg.get("train_groups"):
        trained = list(cfg["train_groups"])
        return [(trained, [r for r in registers if r not in trained])]
    return [([r for r in registers if r != held], [held]) for held in registers]


def run_loro(
    cfgs: list[dict],
    seeds: int,
    epochs: int,
    train_data,
    val_data,
    all_data,
    stop=None,
    model_config=None,
    previous=(),
    held_out=None,
    errors_dir=None,
):
    """Leave one register out: yields ("run", record) per (config, seed, held-out register), then ("done", {runs}).
    Training and validation use only the training registers; the test is every sentence of the held-out
    register (all of all_data's rows of it). Runs in `previous` with the same config and seed are reused.
    `held_out` (register names) holds out only those, for a cheaper screen; each still trains on all others.
    `errors_dir`: each trained model also writes its held-out mistakes there, as
    CONFIG_seedN_REGISTER.csv (runs reused from `previous` write none)."""
    registers = list(all_data.group_indices())
    if len(registers) < 2:
        raise DataError("leave-one-register-out needs data with a register column and at least 2 registers")
    unknown = [h for h in held_out or [] if h not in registers]
    if unknown:
        raise DataError(f"no register(s) {', '.join(map(repr, unknown))} in the data ({', '.join(registers)})")
    done = {(config_key(r["config"]), r["seed"], r["held_out"]): r for r in previous}
    runs = []
    for cfg in cfgs:
        for seed in range(seeds):
            for trained, tested in loro_plan(cfg, registers):
                tested = [h for h in tested if not held_out or h in held_out]
                if not tested:
                    continue
                keys = [(config_key(cfg), seed, h) for h in tested]
                if all(k in done for k in keys):
                    records = [done[k] for k in keys]
                else:
                    if stop is not None and stop.is_set():
                        return
                    records = _loro_runs(
                        cfg,
                        seed,
                        epochs,
                        trained,
                        tested,
                        train_data,
                        val_data,
                        all_data,
                        stop,
                        model_config,
                        errors_dir,
                    )
                for record in records:
                    runs.append(record)
                    yield "run", record
    yield "done", {"runs": runs}


def _loro_runs(
    cfg, seed, epochs, trained, held_out, train_data, val_data, all_data, stop, model_config, errors_dir=None
) -> list:
    tr, va = train_data.only_groups(trained), val_data.only_groups(trained)
    model = new_model(tr.tasks, model_config, seed=seed, device="auto")
    config = train_config({"freeze": "none", **cfg}, seed, epochs)
    t0 = time.perf_counter()
    done = list(train(model, tr, va, config, stop=stop))[-1]
    seconds = time.perf_counter() - t0
    records = []
    for held in held_out:
        test = all_data.only_groups([held])
        metrics = evaluate(model, test)
        if errors_dir is not None:
            name = f"{file_slug(cfg['name'])}_seed{seed}_{file_slug(held)}.csv"
            write_mistakes_csv(model, test, Path(errors_dir) / name)
        records.append(
            {
                "sweep": "loro",
                "name": cfg["name"],
                "config": cfg,
                "seed": seed,
                "held_out": held,
                "trained_on": trained,
                "train_sentences": len(tr),
                "steps": done["steps"],
                "seconds": seconds,
                "test": {t: {k: m[k] for k in ("accuracy", "macro_f1", "n")} for t, m in metrics.items()},
            }
        )
    return records
