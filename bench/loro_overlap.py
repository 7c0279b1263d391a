"""How much of a leave-one-register-out score is text the training registers already say.

Every corpus-v2 register was written by the same kind of writer, and later batches were written for the held-out
registers' mistakes: a training sentence can tell the same small scene as a held-out one ("the dry cleaner got a red
wine stain out"). For each sentence of a held-out register, this takes the cosine of the packaged MiniLM's
embedding to its nearest sentence in the training split of the other registers (data/v2/train.csv, the corpus as it
is now): "near" at or above --cosine, "far" below. Then, for every committed mistakes file of the shipped recipe on
that register (results/errors/<batch>/<recipe>_seedN_<register>.csv), the accuracy per task on near and on far
sentences. The far sentences are far from the latest corpus, so from every earlier one too: their accuracy is the
held-out score no paraphrase can have lifted. Everything goes to bench/results/loro_overlap.json.

Run: python bench/loro_overlap.py   (about 2 minutes on 2 cores)
"""

import argparse
import csv
import re
import sys
from pathlib import Path

from common import ROOT, SHIPPED_LORO, write_progress

from mtl.datacheck import nearest_by_meaning
from mtl.predictions import file_slug

RECIPE = file_slug(SHIPPED_LORO)  # how the sweep names the shipped recipe's mistakes files
SPLITS = ["data/v2/train.csv", "data/v2/val.csv", "data/v2/test.csv"]
TASKS = ("topic", "sentiment")


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def mistakes(path: Path) -> dict[str, set[str]]:
    """task -> the texts a run got wrong on it."""
    rows = read_rows(path)
    return {t: {r["text"] for r in rows if r[f"{t}_gold"] != r[f"{t}_pred"]} for t in TASKS}


def accuracy(texts: list[str], wrong: set[str]) -> float:
    return 1 - sum(t in wrong for t in texts) / len(texts)


def register_overlap(register: str, rows: list[dict], train: list[dict], threshold: float) -> dict:
    held = [r["text"] for r in rows if r["register"] == register]
    cos, _ = nearest_by_meaning(held, [r["text"] for r in train if r["register"] != register])
    near = [t for t, c in zip(held, cos) if c >= threshold]
    far = [t for t, c in zip(held, cos) if c < threshold]
    runs = []
    pattern = re.compile(rf"{RECIPE}_seed(\d+)_{register}\.csv")
    for path in sorted((ROOT / "results" / "errors").glob(f"*/{RECIPE}_seed*_{register}.csv")):
        wrong = mistakes(path)
        runs.append(
            {
                "batch": path.parent.name,
                "seed": int(pattern.fullmatch(path.name).group(1)),
                **{
                    part: {t: accuracy(texts, wrong[t]) for t in TASKS}
                    for part, texts in (("all", held), ("near", near), ("far", far))
                },
            }
        )
    return {"n": len(held), "near": len(near), "far": len(far), "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registers", nargs="+", default=["reviews", "financial"])
    parser.add_argument("--cosine", type=float, default=0.70)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "loro_overlap.json"))
    args = parser.parse_args(argv)
    rows = [r for split in SPLITS for r in read_rows(ROOT / split)]
    train = read_rows(ROOT / SPLITS[0])
    result = {
        "cosine": args.cosine,
        "train": SPLITS[0],
        "train_sentences": len(train),
        "registers": {g: register_overlap(g, rows, train, args.cosine) for g in args.registers},
    }
    write_progress(Path(args.output), result)
    for g, r in result["registers"].items():
        print(f"{g}: {r['near']} near, {r['far']} far of {r['n']}")
        for run in r["runs"]:
            accs = "  ".join(f"{p} {run[p]['topic']:.3f}/{run[p]['sentiment']:.3f}" for p in ("all", "near", "far"))
            print(f"  {run['batch']} seed {run['seed']}: {accs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
