"""Predictions as table rows and as the CSV file that `python -m mtl predict --output` and the app's
Predict tab both write: text, then per task the top label and its probability, then one probability
column per label (`task:label`)."""

import csv
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


def write_predictions_csv(rows: list[dict], path) -> Path:
    """Write prediction_rows to a UTF-8 CSV atomically: a reader never sees half a file.

    Every text cell, the header included (task names and labels come from a user's data), goes through
    neutralise_cell: one that starts with = + - @, a tab or a carriage return (or with ') is written with a
    leading ', so that opening the file in a spreadsheet never runs a formula. Numbers are written as they are."""
    path = Path(path)
    columns = list(rows[0])

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([neutralise_cell(c) for c in columns])
            writer.writerows([neutralise_cell(row.get(c, "")) for c in columns] for row in rows)

    write_atomic(path, write)
    return path
