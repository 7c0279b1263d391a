"""Build corpus v2's fixed splits: data/v2/{train,val,test}.csv with columns text,topic,sentiment,register.

- v2's registers (data/v2/raw/<register>.csv) are split 70/15/15 within every register x topic x sentiment cell.
- Sentences written later come as batches, data/v2/raw/<batch>/<register>.csv. Every batch is split on its own,
  the same way, so adding a batch never moves a sentence that is already in a split.
- v1's 2,304 sentences join as the register `crafted`, each in the split it already has in data/{train,val,test}.csv,
  so v1's test split stays unseen by anything trained on v2's train split.
Deterministic. Refuses to write if any two sentences of the whole corpus are near-duplicates (they would leak).

Run: python data/v2/build_splits.py [--output-dir DIR]   (DIR: a candidate build elsewhere, e.g. for a screen)
"""

import argparse
import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from mtl.datacheck import similar_pairs  # noqa: E402

# 20 slots: 14 train, 3 validation, 3 test, interleaved so any prefix of a cell is split ~70/15/15 (as v1).
PATTERN = "TTVTTXTTTVTTXTTTVTXT"
NAMES = {"T": "train", "V": "val", "X": "test"}
COLUMNS = ["text", "topic", "sentiment", "register"]
V1_REGISTER = "crafted"


def read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def v2_batches() -> list[list[dict]]:
    """The first batch (raw/*.csv), then every later one (raw/<batch>/*.csv) in name order."""
    folders = [HERE / "raw"] + sorted(p for p in (HERE / "raw").iterdir() if p.is_dir())
    return [[r for p in sorted(folder.glob("*.csv")) for r in read(p)] for folder in folders]


def split_v2(rows: list[dict], seed: int = 2026) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    cells = defaultdict(list)
    for r in rows:
        cells[(r["register"], r["topic"], r["sentiment"])].append(r)
    splits = defaultdict(list)
    for key in sorted(cells):
        cell = cells[key]
        rng.shuffle(cell)
        for k, r in enumerate(cell):
            splits[NAMES[PATTERN[k % len(PATTERN)]]].append(r)
    return splits


def refuse_near_duplicates(texts: list[str]) -> None:
    pairs = similar_pairs(texts)
    for i, j, c, w in pairs:
        print(f"near-duplicate ({c:.2f}/{w:.2f}): {texts[i]!r} ~ {texts[j]!r}")
    if pairs:
        raise SystemExit(f"{len(pairs)} near-duplicate pairs: fix them in data/v2/raw (or data/raw) before splitting")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build corpus v2's fixed splits.")
    parser.add_argument("--output-dir", type=Path, default=HERE, help="where train/val/test.csv go (default data/v2)")
    out = parser.parse_args(argv).output_dir
    out.mkdir(parents=True, exist_ok=True)
    splits = defaultdict(list)
    for batch in v2_batches():
        for name, part in split_v2(batch).items():
            splits[name] += part
    for name in ("train", "val", "test"):
        splits[name] += [{**r, "register": V1_REGISTER} for r in read(HERE.parent / f"{name}.csv")]
    refuse_near_duplicates([r["text"].strip() for part in splits.values() for r in part])
    rng = random.Random(7)
    for name in ("train", "val", "test"):
        part = splits[name]
        rng.shuffle(part)
        with open(out / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            w.writerows([r["text"].strip(), r["topic"], r["sentiment"], r["register"]] for r in part)
        print(f"{name}: {len(part)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
