"""Agreement of the two independent labellings, per register and task, before adjudication.

    python data/v2/agreement.py     # prints the table; writes data/v2/agreement.md and
                                    # data/v2/relabel/<register>_disagreements.csv (what adjudication settled)

For every register, relabel/<register>_first.csv holds the writer's labels of the sampled sentences as they
were before adjudication, and relabel/<register>_second.csv the blind second labeller's. Cohen's kappa =
(p_o - p_e) / (1 - p_e): observed agreement against the agreement two labellers with the same label
frequencies would reach by chance. The last columns count the sampled sentences whose label the adjudication
(data/v2/adjudication.md) changed, as the final files (data/v2/raw/, data/raw/) now hold them.
"""

import csv
import sys
from collections import Counter

from relabel_sample import HERE, read_rows, sources, text_id

TASKS = ("topic", "sentiment")


def cohen_kappa(a: list[str], b: list[str]) -> float:
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def final_labels() -> dict[str, dict[str, dict]]:
    """register -> id -> row as the corpus holds it now (after adjudication)."""
    out = {reg: {text_id(r["text"]): r for r in read_rows(p)} for reg, p in sources().items()}
    v1 = [r for p in sorted((HERE.parent / "raw").glob("part_*.csv")) for r in read_rows(p)]
    out["crafted"] = {text_id(r["text"]): r for r in v1}
    return out


def compare(register: str, final: dict[str, dict]) -> dict:
    folder = HERE / "relabel"
    first = {r["id"]: r for r in read_rows(folder / f"{register}_first.csv")}
    second = read_rows(folder / f"{register}_second.csv")
    row = {"register": register, "n": len(second)}
    disagreements = []
    for task in TASKS:
        a = [first[r["id"]][task] for r in second]
        b = [r[task].strip() for r in second]
        row[f"{task}_agree"] = sum(x == y for x, y in zip(a, b)) / len(a)
        row[f"{task}_kappa"] = cohen_kappa(a, b)
        row[f"{task}_changed"] = sum(first[r["id"]][task] != final[r["id"]][task] for r in second if r["id"] in final)
        disagreements += [
            (task, final[r["id"]]["text"], x, y, final[r["id"]][task])
            for r, x, y in zip(second, a, b)
            if x != y and r["id"] in final
        ]
    with open(folder / f"{register}_disagreements.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["task", "text", "first", "second", "final"])
        w.writerows(disagreements)
    return row


def main(argv=None) -> int:
    finals = final_labels()
    registers = [r for r in sorted(finals) if (HERE / "relabel" / f"{r}_second.csv").exists()]
    rows = [compare(r, finals[r]) for r in registers]
    lines = [
        "| register | labelled twice | topic agreement | topic kappa | sentiment agreement | sentiment kappa "
        "| changed by adjudication (topic / sentiment) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['register']} | {r['n']} | {r['topic_agree']:.3f} | {r['topic_kappa']:.3f} | "
            f"{r['sentiment_agree']:.3f} | {r['sentiment_kappa']:.3f} | "
            f"{r['topic_changed']} / {r['sentiment_changed']} |"
        )
    table = "\n".join(lines) + "\n" + round2_table()
    print(table)
    header = "# Agreement of the two independent labellings (before adjudication)\n\n"
    header += "Produced by `python data/v2/agreement.py`; see its docstring for what each column is.\n\n"
    (HERE / "agreement.md").write_text(header + table + "\n", encoding="utf-8")
    return 0


def round2_table() -> str:
    """Where a register fell short and its guide was amended: a fresh blind sample (relabel_sample.py
    --round2) labelled under the amended guide, against the corpus's labels under the same guide (frozen in
    <register>_round2_first.csv as they were when it was labelled)."""
    lines = []
    for path in sorted((HERE / "relabel").glob("*_round2_second.csv")):
        register = path.name.removesuffix("_round2_second.csv")
        second = read_rows(path)
        first = {r["id"]: r for r in read_rows(path.with_name(f"{register}_round2_first.csv"))}
        cells = []
        for task in TASKS:
            a = [first[r["id"]][task] for r in second]
            b = [r[task].strip() for r in second]
            cells += [f"{sum(x == y for x, y in zip(a, b)) / len(a):.3f}", f"{cohen_kappa(a, b):.3f}"]
        lines.append(f"| {register} | {len(second)} | " + " | ".join(cells) + " |")
    if not lines:
        return ""
    head = [
        "",
        "After the guide was amended (rules M1-M7, P1-P3, T1-T9, S1-S5 in data/README.md), a fresh blind sample:",
        "",
        "| register | labelled twice | topic agreement | topic kappa | sentiment agreement | sentiment kappa |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(head + lines)


if __name__ == "__main__":
    sys.exit(main())
