"""Predictions as table rows and as the CSV file that `python -m mtl predict --output` and the app's
Predict tab both write: text, then per task the top label and its probability, then one probability
column per label (`task:label`)."""

import csv
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


def write_predictions_csv(rows: list[dict], path) -> Path:
    """Write prediction_rows to a UTF-8 CSV atomically: a reader never sees half a file."""
    path = Path(path)

    def write(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)
    return path
