"""Which freeze setting should the shipped model use, judged on corpus v1 alone? Trains each candidate
on data/train.csv with the same options and seed, scores it on data/val.csv (the test split stays
untouched for the final report), and reports the checkpoint size each would need against the 15 MB
limit of that time. This chose the first shipped model (bottom:2); the current one is chosen by
leave-one-register-out on corpus v2 (README, "Why bottom:0"), under a 25 MB limit.

Run: python bench/shipped_model_choice.py   (about 10 minutes on 2 CPU cores)
"""

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mtl.config import TrainConfig  # noqa: E402
from mtl.data import load_labelled  # noqa: E402
from mtl.model import new_model  # noqa: E402
from mtl.train import train  # noqa: E402

CANDIDATES = [("backbone", "float32"), ("bottom:4", "float32"), ("bottom:2", "float16"), ("none", "float32")]
LIMIT = 15 * 1024 * 1024


def main():
    data = load_labelled(ROOT / "data" / "train.csv")
    val = load_labelled(ROOT / "data" / "val.csv", label_sets=data.tasks)
    rows = []
    for freeze, dtype in CANDIDATES:
        model = new_model(data.tasks, seed=42, device="auto")
        config = TrainConfig(epochs=5, freeze=freeze, save_dtype=dtype, seed=42)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            done = list(train(model, data, val, config, output_dir=Path(tmp) / "ck"))[-1]
            seconds = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in (Path(tmp) / "ck").iterdir())
        m = done["best_metrics"]
        rows.append(
            {
                "freeze": freeze,
                "dtype": dtype,
                "size_bytes": size,
                "fits": size <= LIMIT,
                "seconds": round(seconds, 1),
                **{f"{t}_{k}": round(m[t][k], 4) for t in m for k in ("accuracy", "macro_f1")},
            }
        )
        print(rows[-1], flush=True)
    print("\n| freeze | stored as | checkpoint | fits 15 MB | train time | val topic acc | val sentiment acc |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['freeze']} | {r['dtype']} | {r['size_bytes'] / 2**20:.1f} MiB | {'yes' if r['fits'] else 'no'} "
            f"| {r['seconds']:.0f} s | {r['topic_accuracy']:.4f} | {r['sentiment_accuracy']:.4f} |"
        )
    out = ROOT / "bench" / "results" / "shipped_model_choice.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
