"""The Predict tab's functions (mtl_app/predict.py), called directly: no server, no browser."""

import csv
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from app_helpers import make_context

from mtl.predictions import prediction_rows
from mtl_app import predict
from mtl_app.context import MAX_BATCH_ROWS, MAX_SENTENCE_CHARS, SESSION_MODEL, Session, UIError

ROOT = Path(__file__).resolve().parent.parent


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
    examples = predict.PREDICT_EXAMPLES
    assert {e.topic for e in examples} == set(ctx.tasks["topic"])
    assert {e.sentiment for e in examples} == set(ctx.tasks["sentiment"])
    # every register of the corpus, each with every sentiment
    registers = set(pd.read_csv(ROOT / "data" / "v2" / "test.csv")["register"])
    assert {e.register for e in examples} == registers == set(predict.REGISTER_NAMES)
    for register in registers:
        assert {e.sentiment for e in examples if e.register == register} == set(ctx.tasks["sentiment"])
    # written for the app: none is a sentence of the corpus
    corpus = {
        t for split in ("train", "val", "test") for t in pd.read_csv(ROOT / "data" / "v2" / f"{split}.csv")["text"]
    }
    assert not {e.text for e in examples} & corpus
    preds = ctx.default_model.predict([e.text for e in examples])
    right = sum(p["topic"]["label"] == e.topic for p, e in zip(preds, examples))
    assert right >= len(examples) - 2


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


GOOD = "Parliament passed the budget bill by 212 votes to 190."


def test_each_malformed_request_of_a_batch_gets_its_own_message(ctx):
    bad = [
        ((GOOD, 5), "The model choice must be text, not a number."),
        ((GOOD, [1, 2]), "The model choice must be text, not a list."),
        ((GOOD, {"a": 1}), "The model choice must be text, not an object."),
        ((GOOD, True), "The model choice must be text, not true/false."),
        (({"a": 1}, "default"), "The sentence must be text, not an object."),
        ((5, "default"), "The sentence must be text, not a number."),
    ]
    requests = [(GOOD, "default", None), *[(t, c, None) for (t, c), _ in bad], ("Shares fell 5%.", "default", None)]
    out = predict.predict_many(ctx, requests)
    assert out[0]["top"]["topic"][0] == "Politics" and out[-1]["top"]["topic"][0] == "Business"
    assert [str(e) for e in out[1:-1]] == [m for _, m in bad] and all(isinstance(e, UIError) for e in out[1:-1])
    with pytest.raises(UIError, match="not a number"):
        ctx.resolve(5, None)


class FailsOn:
    """A model that fails on one sentence (or on every one) and otherwise predicts as `model` does."""

    def __init__(self, model, poison=None):
        self.model, self.poison, self.tasks, self.encoder = model, poison, model.tasks, model.encoder

    def predict(self, texts):
        if self.poison is None or self.poison in texts:
            raise RuntimeError("a secret detail")
        return self.model.predict(texts)


def test_any_error_of_one_request_is_that_requests_alone(ctx, monkeypatch, capsys):
    resolve = ctx.resolve

    def resolve_or_fail(choice, session):
        if choice == "boom":
            raise KeyError("a secret detail")
        return resolve(choice, session)

    monkeypatch.setattr(ctx, "resolve", resolve_or_fail)
    picky, broken = Session(), Session()
    picky.model, broken.model = FailsOn(ctx.default_model, "poison"), FailsOn(ctx.default_model)
    out = predict.predict_many(
        ctx,
        [
            (GOOD, "default", None),
            (GOOD, "boom", None),  # a bug while looking up the model
            (GOOD, SESSION_MODEL, broken),  # a model that cannot predict at all
            ("Shares fell 5%.", SESSION_MODEL, picky),  # shares a forward pass with the next two
            ("poison", SESSION_MODEL, picky),
            ("The hotel was lovely.", SESSION_MODEL, picky),
        ],
    )
    assert out[0]["top"]["topic"][0] == "Politics"
    assert out[3]["top"]["topic"][0] == "Business" and out[5]["top"]["topic"][0] == "Travel"
    for i in (1, 2, 4):
        assert isinstance(out[i], UIError) and "Something went wrong" in str(out[i]) and "secret" not in str(out[i])
    assert "a secret detail" in capsys.readouterr().err  # the tracebacks go to the log


def test_a_file_is_predicted_in_chunks_in_its_own_order(ctx, tmp_path):
    texts = [f"{'Very ' * (i % 7)}good news about the match number {i}." for i in range(40)]
    path = tmp_path / "forty.txt"
    path.write_text("\n".join(texts) + "\n")
    rows = predict.predict_file(ctx, path, "default", None, out_dir=tmp_path)["table"].to_dict("records")
    expected = prediction_rows(ctx.default_model, texts)
    assert [r["text"] for r in rows] == texts and [r["topic"] for r in rows] == [e["topic"] for e in expected]
    assert [r["topic_score"] for r in rows] == pytest.approx([e["topic_score"] for e in expected], abs=1e-4)


def test_a_visitor_waits_at_most_one_chunk_of_a_file(ctx, monkeypatch, tmp_path):
    events, model = [], ctx.default_model
    real_predict, real_resolve = model.predict, ctx.resolve

    def predict_spy(texts, *args, **kwargs):
        events.append(("start", len(texts)))
        out = real_predict(texts, *args, **kwargs)
        events.append(("end", len(texts)))
        return out

    def resolve_spy(choice, session):
        events.append(("resolve", choice))
        return real_resolve(choice, session)

    monkeypatch.setattr(model, "predict", predict_spy)
    monkeypatch.setattr(ctx, "resolve", resolve_spy)
    path = tmp_path / "many.txt"
    path.write_text("\n".join(f"The home side won the match number {i}." for i in range(400)) + "\n")
    file = threading.Thread(target=predict.predict_file, args=(ctx, path, "default", None, tmp_path))
    file.start()
    deadline = time.monotonic() + 120
    while not any(kind == "start" for kind, _ in events):  # the file's first chunk runs
        assert time.monotonic() < deadline
        time.sleep(0.01)
    r = predict.predict_text(ctx, GOOD, "default", None)
    file.join(timeout=300)
    assert r["top"]["topic"][0] == "Politics"
    asked = events.index(("resolve", "default"), 1)  # the visitor's request (the file's came first)
    mine = events.index(("start", 1))
    chunks_ended = [i for i, (kind, n) in enumerate(events) if kind == "end" and n != 1]
    assert asked < mine < chunks_ended[-1]  # answered while the file was still being predicted
    assert not any(kind == "start" for kind, _ in events[asked + 1 : mine])  # only the chunk it found running
