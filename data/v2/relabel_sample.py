"""Draw the blind sample for the second, independent labelling (10% of every register, at least 100).

    python data/v2/relabel_sample.py            # writes data/v2/relabel/<register>_blind.csv (id,text)
    python data/v2/relabel_sample.py --round2 financial   # a fresh sample after the guide was amended
    python data/v2/relabel_sample.py --batch batch2       # a sample of a later batch (raw/batch2/<register>.csv)

The second labeller sees only `id,text`, never the first labels, and writes `<register>_second.csv`
(`id,topic,sentiment`). `agreement.py` then compares the two. Ids are a hash of the text, so the sample
stays valid when rows are reordered; the draw is seeded, so re-running gives the same sample.
"""

import csv
import hashlib
import math
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARE, MINIMUM, SEED = 0.10, 100, 20261128
BATCH_SHARE = 0.20  # a later batch is small: a larger share keeps every register above 10 % labelled twice


def text_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sources(batch: str = "") -> dict[str, Path]:
    """register -> raw file of the first batch (v1's eight parts form the register `crafted`), or of `batch`."""
    return {p.stem: p for p in sorted((HERE / "raw" / batch).glob("*.csv"))}


def draw(rows: list[dict], register: str) -> list[dict]:
    n = max(MINIMUM, math.ceil(SHARE * len(rows)))
    rng = random.Random(f"{SEED}-{register}")
    return rng.sample(rows, min(n, len(rows)))


def second_round(register: str) -> None:
    """A fresh sample of `register` (none of the first sample's sentences) for a second blind labelling under
    the guide as amended after adjudication: does the amended guide reach the agreement the first did not?"""
    out_dir = HERE / "relabel"
    rows = read_rows(sources()[register])
    first = {r["id"] for r in read_rows(out_dir / f"{register}_blind.csv")}
    fresh = [r for r in rows if text_id(r["text"]) not in first]
    write_blind(out_dir / f"{register}_round2_blind.csv", draw(fresh, f"{register}-round2"))


def batch_sample(batch: str) -> None:
    """BATCH_SHARE of every register of a later batch, for the same blind second labelling. The writer's labels
    of the sample are frozen beside it (<register>_<batch>_first.csv), once: what agreement.py compares with,
    whatever adjudication changes in the raw file later."""
    for register, path in sources(batch).items():
        rows = read_rows(path)
        sample = random.Random(f"{SEED}-{batch}-{register}").sample(rows, math.ceil(BATCH_SHARE * len(rows)))
        write_blind(HERE / "relabel" / f"{register}_{batch}_blind.csv", sample)
        first = HERE / "relabel" / f"{register}_{batch}_first.csv"
        if not first.exists():
            with open(first, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["id", "topic", "sentiment"])
                w.writerows([text_id(r["text"]), r["topic"], r["sentiment"]] for r in sample)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--round2"]:
        for register in argv[1:]:
            second_round(register)
        return 0
    if argv[:1] == ["--batch"]:
        for batch in argv[1:]:
            batch_sample(batch)
        return 0
    out_dir = HERE / "relabel"
    out_dir.mkdir(exist_ok=True)
    registers = dict(sources())
    v1 = [r for p in sorted((HERE.parent / "raw").glob("part_*.csv")) for r in read_rows(p)]
    for register, path in registers.items():
        rows = read_rows(path)
        write_blind(out_dir / f"{register}_blind.csv", draw(rows, register))
    write_blind(out_dir / "crafted_blind.csv", draw(v1, "crafted"))
    return 0


def write_blind(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for r in rows:
            w.writerow([text_id(r["text"]), r["text"]])
    print(f"{path.name}: {len(rows)} sentences")


if __name__ == "__main__":
    sys.exit(main())
