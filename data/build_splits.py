"""Build the fixed train/validation/test splits from the hand-written parts in data/raw/.

Stratified by topic x sentiment, with the hard cases of each cell spread over the splits in the same
70/15/15 proportion. Deterministic: rerunning gives the same files. Refuses to write if any sentence
is a near-duplicate of another (those would leak across splits).

Run: python data/build_splits.py
"""

import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mtl.datacheck import similar_pairs  # noqa: E402

# 20 slots: 14 train, 3 validation, 3 test, interleaved so any prefix of a cell is split ~70/15/15.
PATTERN = "TTVTTXTTTVTTXTTTVTXT"
NAMES = {"T": "train", "V": "val", "X": "test"}


def main():
    rows = []
    for part in sorted((HERE / "raw").glob("part_*.csv")):
        with open(part, encoding="utf-8", newline="") as f:
            rows += list(csv.DictReader(f))
    texts = [r["text"].strip() for r in rows]
    pairs = similar_pairs(texts)
    if pairs:
        for i, j, c, w in pairs:
            print(f"near-duplicate ({c:.2f}/{w:.2f}): {texts[i]!r} ~ {texts[j]!r}")
        raise SystemExit("fix the near-duplicates in data/raw before splitting")
    rng = random.Random(13)
    cells = defaultdict(list)
    for r in rows:
        cells[(r["topic"], r["sentiment"])].append(r)
    splits = defaultdict(list)
    for key in sorted(cells):
        hard = [r for r in cells[key] if r["hard"]]
        plain = [r for r in cells[key] if not r["hard"]]
        rng.shuffle(hard)
        rng.shuffle(plain)
        # hard cases sorted by kind first, so each kind is spread across the splits too
        for k, r in enumerate(sorted(hard, key=lambda r: r["hard"]) + plain):
            splits[NAMES[PATTERN[k % len(PATTERN)]]].append(r)
    for name, part in splits.items():
        rng.shuffle(part)
        with open(HERE / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["text", "topic", "sentiment"])
            w.writerows([r["text"].strip(), r["topic"], r["sentiment"]] for r in part)
        print(f"{name}: {len(part)}")
    with open(HERE / "hard_cases.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "kind", "split"])
        for name in ("train", "val", "test"):
            w.writerows([r["text"].strip(), r["hard"], name] for r in splits[name] if r["hard"])


if __name__ == "__main__":
    main()
