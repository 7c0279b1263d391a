"""Agreement between the first labels and the blind second labelling, per register and task.

    python data/v2/agreement.py     # prints the table and writes data/v2/agreement.md and
                                    # data/v2/relabel/<register>_disagreements.csv (for adjudication)

Cohen's kappa = (p_o - p_e) / (1 - p_e): observed agreement against the agreement two labellers with the
same label frequencies would reach by chance.
"""

import csv
import sys
from collections import Counter
from pathlib import Path

from relabel_sample import HERE, read_rows, sources, text_id

TASKS = ("topic", "sentiment")


def cohen_kappa(a: list[str], b: list[str]) -> float:
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def first_labels() -> dict[str, dict[str, dict]]:
    """register -> id -> first-labelled row."""
    out = {reg: {text_id(r["text"]): r for r in read_rows(p)} for reg, p in sources().items()}
    v1 = [r for p in sorted((HERE.parent / "raw").glob("part_*.csv")) for r in read_rows(p)]
    out["crafted"] = {text_id(r["text"]): r for r in v1}
    return out


def compare(register: str, first: dict[str, dict], second_path: Path) -> dict:
    second = read_rows(second_path)
    pairs = [(first[r["id"]], r) for r in second if r["id"] in first]
    row = {"register": register, "n": len(pairs)}
    disagreements = []
    for task in TASKS:
        a = [p[0][task] for p in pairs]
        b = [p[1][task].strip() for p in pairs]
        row[f"{task}_agree"] = sum(x == y for x, y in zip(a, b)) / max(len(a), 1)
        row[f"{task}_kappa"] = cohen_kappa(a, b) if a else float("nan")
        disagreements += [(task, p[0]["text"], x, y) for p, x, y in zip(pairs, a, b) if x != y]
    out = second_path.with_name(f"{register}_disagreements.csv")
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["task", "text", "first", "second"])
        w.writerows(disagreements)
    return row


def main(argv=None) -> int:
    firsts = first_labels()
    rows = []
    for register, first in sorted(firsts.items()):
        second_path = HERE / "relabel" / f"{register}_second.csv"
        if second_path.exists():
            rows.append(compare(register, first, second_path))
    lines = [
        "| register | labelled twice | topic agreement | topic kappa | sentiment agreement | sentiment kappa |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['register']} | {r['n']} | {r['topic_agree']:.3f} | {r['topic_kappa']:.3f} | "
            f"{r['sentiment_agree']:.3f} | {r['sentiment_kappa']:.3f} |"
        )
    table = "\n".join(lines)
    print(table)
    (HERE / "agreement.md").write_text(
        "# Agreement of the two labellings (before adjudication)\n\nProduced by `python data/v2/agreement.py`.\n\n"
        + table
        + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
