"""A new batch's rows that say what a held-out register already says, before the batch is measured.

    python data/v2/heldout_overlap.py --batch batch6                      # against reviews and financial
    python data/v2/heldout_overlap.py --batch batch6 --cosine 0.68 --char 0.30 --word 0.25

Leave-one-register-out scores a register no training sentence came from; a later batch written for that register's
mistakes can quietly paraphrase its sentences. Two passes over every row of raw/<batch>/ against every row of the
held-out registers' raw files: the corpus's own lexical check (`datacheck.similar_pairs`) and the cosine of the
packaged MiniLM's embeddings, which finds the same scene in other words. Prints each hit, closest first, and the
count; exits 1 when there is any. The lead reads the hits; a writer who rewrites one is shown only the batch's row.
"""

import argparse
import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def batch_rows(batch: str) -> list[tuple[str, int, str]]:
    """(register, line in its file, text) of every row of raw/<batch>/."""
    return [
        (path.stem, line, row["text"])
        for path in sorted((HERE / "raw" / batch).glob("*.csv"))
        for line, row in enumerate(rows(path), 2)
    ]


def cosine_hits(texts: list[str], held: list[str], threshold: float) -> list[tuple[float, int, int]]:
    """(cosine, batch index, held-out index) of each batch row's closest held-out sentence at or above threshold."""
    from mtl.datacheck import nearest_by_meaning

    cos, best = nearest_by_meaning(texts, held)
    return [(float(c), i, int(j)) for i, (c, j) in enumerate(zip(cos, best)) if c >= threshold]


def main(argv=None) -> int:
    from mtl import datacheck

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", required=True, help="a folder of raw/, e.g. batch6")
    parser.add_argument("--held-out", nargs="+", default=["reviews", "financial"], metavar="REGISTER")
    parser.add_argument("--cosine", type=float, default=0.70)
    parser.add_argument("--char", type=float, default=0.45)
    parser.add_argument("--word", type=float, default=0.35)
    args = parser.parse_args(argv)
    new = batch_rows(args.batch)
    if not new:
        parser.error(f"no raw/{args.batch}/*.csv")
    held = [row["text"] for g in args.held_out for row in rows(HERE / "raw" / f"{g}.csv")]
    texts = [text for *_, text in new]
    hits = [("words", c, i, j) for i, j, c, _ in datacheck.similar_pairs(texts, held, char=args.char, token=args.word)]
    hits += [("meaning", s, i, j) for s, i, j in cosine_hits(texts, held, args.cosine)]
    for kind, score, i, j in sorted(hits, key=lambda h: -h[1]):
        register, line, text = new[i]
        print(f"{kind} {score:.2f} {register}:{line}\n  {text}\n  {held[j]}")
    print(f"{len(hits)} rows of {args.batch} close to {', '.join(args.held_out)}")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
