"""Prediction rows and the predictions CSV shared by the CLI and the app."""

import csv

from mtl.predictions import prediction_rows, write_predictions_csv


def test_rows_and_csv_round_trip(tiny_model, tmp_path):
    rows = prediction_rows(tiny_model, ["the team won", "shares fell, awful news"])
    assert [r["text"] for r in rows] == ["the team won", "shares fell, awful news"]
    assert list(rows[0])[:5] == ["text", "topic", "topic_score", "sentiment", "sentiment_score"]
    for row in rows:
        for task, labels in tiny_model.tasks.items():
            probs = [row[f"{task}:{lab}"] for lab in labels]
            assert abs(sum(probs) - 1) < 1e-4 and row[task] == labels[probs.index(max(probs))]
    (tmp_path / "out").mkdir()
    out = write_predictions_csv(rows, tmp_path / "out" / "p.csv")
    back = list(csv.DictReader(open(out, encoding="utf-8", newline="")))
    assert back == [{k: str(v) for k, v in row.items()} for row in rows]
    assert [p.name for p in out.parent.iterdir()] == ["p.csv"]  # no temporary file left behind
