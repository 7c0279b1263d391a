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
    row = {
        "register": register,
        "n": len(second),
        **agreement(first, second, final, folder / f"{register}_disagreements.csv"),
    }
    for task in TASKS:
        row[f"{task}_changed"] = sum(first[r["id"]][task] != final[r["id"]][task] for r in second if r["id"] in final)
    return row


def agreement(first: dict[str, dict], second: list[dict], final: dict[str, dict], out=None) -> dict:
    """{task_agree, task_kappa} of the two labellings of one sample; with `out`, writes there the disagreements
    with the label the corpus holds now (what adjudication settled)."""
    row, disagreements = {}, []
    for task in TASKS:
        a = [first[r["id"]][task] for r in second]
        b = [r[task].strip() for r in second]
        row[f"{task}_agree"] = sum(x == y for x, y in zip(a, b)) / len(a)
        row[f"{task}_kappa"] = cohen_kappa(a, b)
        disagreements += [
            (task, final[r["id"]]["text"], x, y, final[r["id"]][task])
            for r, x, y in zip(second, a, b)
            if x != y and r["id"] in final
        ]
    if out is not None:
        with open(out, "w", newline="", encoding="utf-8") as f:
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
    table = "\n".join(lines) + "\n" + later_tables()
    print(table)
    header = "# Agreement of the two independent labellings (before adjudication)\n\n"
    header += "Produced by `python data/v2/agreement.py`; see its docstring for what each column is.\n\n"
    (HERE / "agreement.md").write_text(header + table + "\n", encoding="utf-8")
    return 0


LATER_SAMPLES = {
    "round2": "After the guide was amended (rules M1-M7, P1-P3, T1-T9, S1-S5 in data/README.md), a fresh blind sample:",
    "batch2": "Batch 2 (data/v2/raw/batch2/: sentences that apply the rules P3, T1, M1, M5-M7 in four more "
    "registers), a blind sample of 20 % of each register:",
    "batch3": "Batch 3 (data/v2/raw/batch3/: first-person experiences of places, services and products in forum "
    "and social posts; figures and their direction in headlines and news reports), a blind sample of 20 % of each "
    "register:",
    "batch4": "Batch 4 (data/v2/raw/batch4/: forum and social posts whose subject is left to a cue, and plainly named "
    "subjects beside a misleading side word), a blind sample of 20 % of each register:",
    "batch5": "Batch 5 (data/v2/raw/batch5/: money and figures whose topic turns on a money rule and whose sentiment "
    "on the figure's direction, in four registers), a blind sample of 20 % of each register:",
    "batch6": "Batch 6 (data/v2/raw/batch6/: verdicts on things people eat, buy, watch, read, stay at and use, most "
    "leaving the kind of thing to a cue, in four registers), a blind sample of 20 % of each register:",
}


def later_tables() -> str:
    """The blind samples drawn after the first: `round2` (where a register fell short and its guide was amended,
    a fresh sample labelled under the amended guide) and later batches of sentences. Each compares
    <register>_<kind>_second.csv with the corpus's labels frozen in <register>_<kind>_first.csv as they were
    when it was labelled, and writes the disagreements (with the label the corpus holds now) beside them."""
    return "\n".join(t for t in (later_table(kind, title) for kind, title in LATER_SAMPLES.items()) if t)


def later_table(kind: str, title: str) -> str:
    folder = HERE / "relabel"
    final = {text_id(r["text"]): r for p in (HERE / "raw").rglob("*.csv") for r in read_rows(p)}
    lines = []
    for path in sorted(folder.glob(f"*_{kind}_second.csv")):
        register = path.name.removesuffix(f"_{kind}_second.csv")
        second = read_rows(path)
        first = {r["id"]: r for r in read_rows(path.with_name(f"{register}_{kind}_first.csv"))}
        out = None if kind == "round2" else folder / f"{register}_{kind}_disagreements.csv"
        row = agreement(first, second, final, out)
        cells = [f"{row[f'{task}_{m}']:.3f}" for task in TASKS for m in ("agree", "kappa")]
        lines.append(f"| {register} | {len(second)} | " + " | ".join(cells) + " |")
    if not lines:
        return ""
    head = [
        "",
        title,
        "",
        "| register | labelled twice | topic agreement | topic kappa | sentiment agreement | sentiment kappa |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(head + lines)


if __name__ == "__main__":
    sys.exit(main())
