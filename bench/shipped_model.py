"""Trains the shipped model with the README's command, times it, and scores it on the test splits.

Runs `python -m mtl train` exactly as the README gives it (into a temporary folder unless --output is
given), then `python -m mtl eval --json` on v2's test split (every register, v1's test split is its
`crafted` register) and on v1's own test file, for the new checkpoint and, with --baseline, for the one
it replaces. Everything goes to bench/results/shipped_model.json.

Run: python bench/shipped_model.py --output checkpoints/default --baseline DIR   (about 10 minutes on 2 cores)
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mtl.cli.experiments import machine_info  # noqa: E402
from mtl.io import write_atomic  # noqa: E402

TRAIN = [
    "--data", "data/v2/train.csv", "--val", "data/v2/val.csv",
    "--freeze", "bottom:0", "--save-dtype", "float16", "--epochs", "5", "--seed", "42",
]  # fmt: skip
TESTS = ["data/v2/test.csv", "data/test.csv"]


def mtl(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mtl", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"python -m mtl {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def scores(checkpoint: str) -> dict:
    """{test file: eval --json payload} at fp32, so the numbers are the model's, not a precision's."""
    out = {}
    for test in TESTS:
        payload = json.loads(mtl("eval", "--checkpoint", checkpoint, "--data", test, "--precision", "fp32", "--json"))
        out[test] = {"metrics": payload["metrics"], "by_register": payload.get("by_register", {})}
    return out


def size_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", help="where the checkpoint goes (default: a temporary folder, then deleted)")
    ap.add_argument("--baseline", help="the checkpoint it replaces, scored on the same files")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        output = args.output or str(Path(tmp) / "shipped")
        t0 = time.perf_counter()
        mtl("train", *TRAIN, "--output", output, "--quiet")
        seconds = time.perf_counter() - t0
        meta = json.loads((Path(output) / "mtl.json").read_text())
        result = {
            "command": "python -m mtl train " + " ".join(f"'{a}'" if " " in a else a for a in TRAIN) + " --output DIR",
            "seconds": round(seconds, 1),
            "machine": machine_info(),
            "checkpoint_bytes": size_bytes(Path(output)),
            "sha256": meta["sha256"],
            "validation": meta["metrics"]["validation"],
            "test": scores(output),
        }
    if args.baseline:
        result["baseline"] = {"checkpoint": args.baseline, "test": scores(args.baseline)}
    out = ROOT / "bench" / "results" / "shipped_model.json"
    write_atomic(out, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2) + "\n"))
    print(f"trained in {seconds:.0f} s; wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
