"""Predictions as table rows and as the CSV file that `python -m mtl predict --output` and the app's
Predict tab both write: text, then per task the top label and its probability, then one probability
column per label (`task:label`)."""

import csv
import hashlib
import re
from pathlib import Path

from .io import write_atomic


def prediction_rows(model, texts: list[str]) -> list[dict]:
    """One row per text: text, then per task the top label and its probability, then one column per label."""
    rows = []
    for text, pred in zip(texts, model.predict(texts)):
        row = {"text": text}
        for task, p in pred.items():
            row[task] = p["label"]
            row[f"{task}_score"] = round(p["score"], 6)
        for task, p in pred.items():
            row.update({f"{task}:{lab}": round(v, 6) for lab, v in p["probs"].items()})
        rows.append(row)
    return rows


def mistake_rows(model, data) -> list[dict]:
    """The texts of `data` the model gets wrong on any task: text, then per task the gold label, the predicted
    one and its probability (a task the text has no label for is never a mistake)."""
    rows = []
    for i, (text, pred) in enumerate(zip(data.texts, model.predict(data.texts))):
        gold = {t: data.labels[t][i] for t in pred}
        if any(gold[t] is not None and gold[t] != p["label"] for t, p in pred.items()):
            row = {"text": text}
            for t, p in pred.items():
                row.update({f"{t}_gold": gold[t] or "", f"{t}_pred": p["label"], f"{t}_prob": round(p["score"], 2)})
            rows.append(row)
    return rows


def write_mistakes_csv(model, data, path) -> Path:
    """mistake_rows as a CSV (written like predictions: atomically, no cell a spreadsheet would run); a model
    with no mistakes writes the header alone."""
    columns = ["text"] + [f"{t}_{k}" for t in model.tasks for k in ("gold", "pred", "prob")]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_predictions_csv(mistake_rows(model, data), path, columns)


def file_slug(name: str) -> str:
    """`name` (a configuration's or a register's, from a user's data) as a safe file-name part: lower-case ASCII
    letters, digits and single hyphens, never empty, never a path. A name that had to change gets a short hash of
    itself, so two names never share a file ("Posts" and "posts!" do not overwrite each other)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80]
    if slug == name:
        return slug
    return f"{slug or 'unnamed'}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:6]}"


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV Injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")  # ASCII digits only


def neutralise_cell(value):
    """A text cell that a spreadsheet would run as a formula, with a ' in front (the OWASP rule); a cell that
    starts with ' gets one more, so dropping one leading ' always gives the text back. A plain number such as
    "-5" is left as it is (nothing can follow it, so it cannot be a formula); "-5 degrees" is text, prefixed."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_predictions_csv(rows: list[dict], path, columns: list[str] | None = None) -> Path:
    """Write prediction_rows to a UTF-8 CSV atomically: a reader never sees half a file.

    Every text cell, the header included (task names and labels come from a user's data), goes through
    neutralise_cell: one that starts with = + - @, a tab or a carriage return (or with ') is written with a
    leading ', so that opening the file in a spreadsheet never runs a formula. Numbers are written as they are."""
    path = Path(path)
    columns = columns or list(rows[0])

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([neutralise_cell(c) for c in columns])
            writer.writerows([neutralise_cell(row.get(c, "")) for c in columns] for row in rows)

    write_atomic(path, write)
    return path
