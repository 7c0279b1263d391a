"""Helpers shared by the benchmark scripts: machine facts, timing, tables, JSON output."""

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def machine() -> dict:
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def best_time(fn, repeats: int = 3) -> float:
    """Best of `repeats` wall-clock runs: the least disturbed by other load on a shared machine."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"median_ms": 1000 * statistics.median(s), "p95_ms": 1000 * s[int(0.95 * (len(s) - 1))]}


def matmul_peak(dtype_name: str, n: int = 2048, repeats: int = 5) -> float:
    """Measured matrix-multiply rate in GFLOP/s (the machine's practical compute bound)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    return 2 * n**3 / best_time(lambda: torch.mm(a, b), repeats) / 1e9


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


def realistic_sentences(n: int = 2000) -> list[str]:
    from mtl.data import load_labelled

    data = load_labelled([ROOT / "data" / f"{s}.csv" for s in ("train", "val", "test")])
    return data.texts[:n]


def v2_splits():
    """Corpus v2's (train, val, test), validation and test in the training split's label order."""
    from mtl.data import load_labelled

    data = ROOT / "data" / "v2"
    train = load_labelled(data / "train.csv")
    return train, *(load_labelled(data / f"{s}.csv", label_sets=train.tasks) for s in ("val", "test"))


def read_progress(path, fresh: dict) -> dict:
    """A resumable screen's results file as far as it got, or `fresh` when there is none yet."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return fresh


def write_progress(path, payload: dict) -> None:
    """Write a screen's results after each run, atomically, so an interruption keeps every finished run."""
    from mtl.io import write_atomic

    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8"))


SHIPPED_LORO = "embeddings frozen (bottom:0), 5 epochs"  # the shipped recipe, as the loro sweep names it


def shipped_recipe(seed: int, **changes):
    """The TrainConfig the loro sweep trains the shipped recipe with (mtl.sweep), with `changes` on top."""
    from dataclasses import replace

    from mtl.sweep import select, sweep_configs, train_config

    (cfg,) = select(sweep_configs()["loro"], [SHIPPED_LORO])
    return replace(train_config({"freeze": "none", **cfg}, seed, cfg["epochs"]), **changes)
