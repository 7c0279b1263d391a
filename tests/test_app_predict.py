"""The Predict tab's functions (mtl_app/predict.py), called directly: no server, no browser."""

import csv

import pytest
from app_helpers import make_context

from mtl.predictions import prediction_rows
from mtl_app import predict
from mtl_app.context import MAX_BATCH_ROWS, MAX_SENTENCE_CHARS, Session, UIError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"), update_seconds=0)  # every step an update


def test_predict_gives_every_label_of_both_tasks(ctx):
    r = predict.predict_text(ctx, "Not bad at all for a budget airline.", "default", Session())
    assert set(r["probs"]) == set(ctx.tasks)
    for task, labels in ctx.tasks.items():
        assert set(r["probs"][task]) == set(labels)
        assert sum(r["probs"][task].values()) == pytest.approx(1.0, abs=1e-4)
    assert r["top"]["topic"][0] == "Travel" and r["ms"] > 0 and r["model"] == "default"
    assert "ms for one forward pass" in predict.timing_markdown(r, ctx)


@pytest.mark.parametrize("text", ["", "   \n\t ", None])
def test_predict_refuses_empty_text(ctx, text):
    with pytest.raises(UIError, match="empty"):
        predict.predict_text(ctx, text, "default", Session())


def test_predict_shortens_very_long_text_with_a_note(ctx):
    r = predict.predict_text(ctx, "The match was great. " * 5000, "default", Session())
    assert len(r["text"]) == MAX_SENTENCE_CHARS and "only the first" in r["notes"][0]


def test_examples_cover_every_label_and_the_model_agrees(ctx):
    texts = [t for t, _, _ in predict.PREDICT_EXAMPLES]
    assert {t for _, t, _ in predict.PREDICT_EXAMPLES} == set(ctx.tasks["topic"])
    assert {s for _, _, s in predict.PREDICT_EXAMPLES} == set(ctx.tasks["sentiment"])
    preds = ctx.default_model.predict(texts)
    right = sum(p["topic"]["label"] == t for p, (_, t, _) in zip(preds, predict.PREDICT_EXAMPLES))
    assert right >= len(texts) - 2


def test_predict_file_matches_the_cli_columns(ctx, tmp_path):
    src = tmp_path / "my sentences.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text"], ["1", "The striker scored twice."], ["2", "Shares fell 5%."]])
    r = predict.predict_file(ctx, src, "default", Session(), out_dir=tmp_path)
    expected = prediction_rows(ctx.default_model, ["The striker scored twice.", "Shares fell 5%."])
    assert list(r["table"].columns) == list(expected[0])
    with open(r["csv"], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(expected[0]) and [row["topic"] for row in rows] == [e["topic"] for e in expected]
    assert "2 sentences" in r["status"]
    txt = tmp_path / "lines.txt"
    txt.write_text("One sentence.\n\nAnother one.\n")
    assert len(predict.predict_file(ctx, txt, "default", Session(), out_dir=tmp_path)["table"]) == 2


def test_predict_file_refuses_bad_files_with_a_clear_message(ctx, tmp_path):
    cases = {
        "picture.png": (b"\x89PNG\r\n", "unsupported file type"),
        "no_text.csv": (b"sentence,topic\nhello,World\n", "no 'text' column"),
        "latin1.txt": ("caf\xe9 ol\xe9\n".encode("latin-1"), "not valid UTF-8"),
        "empty.csv": (b"", "empty"),
        "bad.jsonl": (b'{"text": "ok"}\n{not json\n', "not valid JSON"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(UIError, match=message) as e:
            predict.predict_file(ctx, path, "default", Session(), out_dir=tmp_path)
        assert str(tmp_path) not in str(e.value)  # the file's name, not the server's path
    with pytest.raises(UIError, match="Upload a file"):
        predict.predict_file(ctx, None, "default", Session())
    big = tmp_path / "big.txt"
    big.write_text("a sentence\n" * (MAX_BATCH_ROWS + 1))
    with pytest.raises(UIError, match="over the limit"):
        predict.predict_file(ctx, big, "default", Session(), out_dir=tmp_path)
