"""Prediction rows and the predictions CSV shared by the CLI and the app."""

import csv

import pytest

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


# CSV formula injection (OWASP): a spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return)
# as a formula, so such cells are written with a leading '; a plain number is left alone (it cannot be a formula)


def read_back(path) -> list[list[str]]:
    return list(csv.reader(open(path, encoding="utf-8", newline="")))


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://x.example","click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "\t plain after a tab",
        "-5 degrees overnight",  # text, not a number: a spreadsheet reads it as a formula (#NAME?)
        "'=already quoted",  # prefixed too, so that dropping one leading ' always gives the text back
    ],
    ids=["equals", "plus", "minus", "at", "tab-equals", "cr-equals", "tab", "minus-text", "quote"],
)
def test_formula_leading_cells_are_prefixed_with_a_quote(tmp_path, text):
    rows = [{"text": text, "topic": "sports", "topic_score": 0.5}]
    back = read_back(write_predictions_csv(rows, tmp_path / "p.csv"))
    assert back[1] == ["'" + text, "sports", "0.5"]
    assert back[1][0][1:] == text  # reversible: drop the one leading '


def test_labels_and_task_names_from_the_data_are_neutralised_too(tmp_path):
    rows = [{"text": "fine", "=task": "@label", "=task_score": 0.25, "=task:@label": 0.25, "=task:-x": 0.75}]
    back = read_back(write_predictions_csv(rows, tmp_path / "p.csv"))
    assert back[0] == ["text", "'=task", "'=task_score", "'=task:@label", "'=task:-x"]
    assert back[1] == ["fine", "'@label", "0.25", "0.25", "0.75"]


@pytest.mark.parametrize(
    "text",
    ["the team won 3-1", "a = b", "email me@example.com", "-5", "+3.25", "-1e-3", ""],
    ids=["dash-inside", "equals-inside", "at-inside", "negative-number", "plus-number", "exponent", "empty"],
)
def test_ordinary_text_and_plain_numbers_are_written_unchanged(tmp_path, text):
    rows = [{"text": text, "topic": "sports", "topic_score": 0.5}]
    assert read_back(write_predictions_csv(rows, tmp_path / "p.csv"))[1] == [text, "sports", "0.5"]
