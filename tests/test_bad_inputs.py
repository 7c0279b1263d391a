"""Bad input, everywhere a stranger can type or upload something: the app's handlers (mtl_app/), the
app served over HTTP, the command line, data files and checkpoints. Every case checks three things:
the specific message, that the process keeps serving (a good request still succeeds), and that
nothing saved changed (the shipped model and a saved model keep their bytes).

More cases live next to the code they test: test_app_predict.py and test_app_train.py (empty text, bad
uploads, training options, save names), test_cli.py, test_data.py and test_checkpoint.py."""

import copy
import csv
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from argparse import Namespace
from pathlib import Path

import httpx
import pytest
import torch
from app_helpers import BACKBONE, launch, make_context
from conftest import REPO, TOY, write_csv

import mtl.losses
import mtl.train
from mtl.checkpoint import load_checkpoint, save_checkpoint
from mtl.cli import main as cli_main
from mtl.config import ModelConfig
from mtl.data import load_labelled, load_texts
from mtl.errors import CheckpointError, DataError
from mtl.model import new_model
from mtl_app import embeddings, predict, train_run, train_save
from mtl_app.context import MAX_SENTENCE_CHARS, PUBLIC_LIMITS, SESSION_MODEL, Session, UIError
from mtl_app.server import MAX_REQUEST_BYTES

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
DEFAULT = REPO / "checkpoints" / "default"
GOOD = "Not bad at all for a budget airline."


def digest(directory: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).iterdir())}


@pytest.fixture(autouse=True, scope="module")
def shipped_model_never_changes():
    before = digest(DEFAULT)
    yield
    assert digest(DEFAULT) == before


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"), update_seconds=0)


def run(ctx, session, frozen=BACKBONE, epochs=1, n=64, start="pretrained", choice="default"):
    return list(train_run.run_training(ctx, session, choice, start, frozen, epochs, 8, 5e-5, 5e-3, "joint", n))


@pytest.fixture(scope="module")
def keeper(ctx):
    """A session with a trained model, also saved as "keeper": (session, the saved folder's digest)."""
    s = Session()
    assert "Training finished" in run(ctx, s)[-1]["status"]
    train_save.save_session_model(ctx, s, "keeper")
    return s, digest(ctx.saved_dir / "keeper")


def serves(ctx, keeper=None):
    """The app still answers a good request (and the saved model is byte for byte what it was)."""
    r = predict.predict_text(ctx, GOOD, "default", Session())
    assert r["top"]["topic"][0] == "Travel"
    if keeper is not None:
        assert digest(ctx.saved_dir / "keeper") == keeper[1]


# Predict: text nobody should type, typed anyway


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        (" \t\n \u3000 ", "empty"),
        ("\x00\x07\x1b\x7f", "only spaces, control or invisible formatting characters"),
        ("\u200b\ufeff\u200f\u202e", "only spaces, control or invisible formatting characters"),
    ],
    ids=["empty", "whitespace-only", "control-characters-only", "zero-width-and-direction-marks-only"],
)
def test_text_without_anything_to_read_gets_a_message(ctx, text, message):
    with pytest.raises(UIError, match=message):
        predict.predict_text(ctx, text, "default", Session())
    serves(ctx)


@pytest.mark.parametrize(
    "text, note",
    [
        ("😀🎉🔥👍", "knows none of these characters"),
        ("The match\x00 was\x1b[31m great\x07, we won the cup!", None),
        ("الفريق فاز بالمباراة النهائية", None),
        ("\u202eThe striker scored twice in the final.\u202c", None),
        ("The striker scored \ud800 twice.", None),  # a lone surrogate: possible through the JSON API
    ],
    ids=["emoji-only", "control-characters-inside", "right-to-left", "direction-override", "lone-surrogate"],
)
def test_odd_characters_still_get_a_prediction(ctx, text, note):
    r = predict.predict_text(ctx, text, "default", Session())
    for task, probs in r["probs"].items():
        assert set(probs) == set(ctx.tasks[task]) and sum(probs.values()) == pytest.approx(1, abs=1e-4)
    assert "\x00" not in r["text"] and "\ud800" not in r["text"]
    if note:
        assert any(note in n for n in r["notes"])
    serves(ctx)


def test_a_100000_character_sentence_is_cut_quickly(ctx):
    t0 = time.perf_counter()
    r = predict.predict_text(ctx, "The match was great. " * 4762, "default", Session())  # 100,002 characters
    assert time.perf_counter() - t0 < 10
    assert len(r["text"]) == MAX_SENTENCE_CHARS and "100,001 characters" in r["notes"][0]
    serves(ctx)


def test_thousands_of_lines_in_the_predict_box(ctx):
    t0 = time.perf_counter()
    r = predict.predict_text(ctx, "\n".join(f"Line {i}: the team won." for i in range(5000)), "default", Session())
    assert time.perf_counter() - t0 < 10
    assert "5,000 lines" in r["notes"][0] and "upload the lines as a .txt file" in r["notes"][0]
    assert len(r["text"]) <= MAX_SENTENCE_CHARS
    serves(ctx)


@pytest.mark.parametrize(
    "choice, message",
    [
        ("../checkpoints/default", "not a model name"),
        ("/etc/passwd", "not a model name"),
        ("no-such-model", "no saved model named"),
        (SESSION_MODEL, "no trained model yet"),
    ],
    ids=["model-name-escaping-the-folder", "model-name-absolute-path", "unknown-model", "session-without-a-model"],
)
def test_bad_model_choices(ctx, choice, message):
    with pytest.raises(UIError, match=message):
        predict.predict_text(ctx, GOOD, choice, Session())
    serves(ctx)


def test_predict_many_answers_each_request_on_its_own(ctx, keeper):
    """Gradio's request batching hands several users' requests over at once: a bad one gets its own
    message and never fails the good ones."""
    session, _ = keeper
    out = predict.predict_many(
        ctx, [(GOOD, "default", None), ("   ", "default", None), (GOOD, SESSION_MODEL, session), (GOOD, "x/y", None)]
    )
    assert out[0]["top"]["topic"][0] == "Travel" and out[2]["model"] == "this session's trained model"
    assert isinstance(out[1], UIError) and "empty" in str(out[1])
    assert isinstance(out[3], UIError) and "not a model name" in str(out[3])
    single = predict.predict_text(ctx, GOOD, "default", Session())["probs"]["topic"]
    assert out[0]["probs"]["topic"] == pytest.approx(single, abs=1e-5)  # batched = one at a time
    serves(ctx, keeper)


# Embeddings


def test_thousands_of_lines_in_the_embeddings_box(ctx):
    t0 = time.perf_counter()
    r = embeddings.embed_sentences(ctx, "\n".join(f"sentence {i}" for i in range(5000)), "mean", "default", Session())
    assert time.perf_counter() - t0 < 20
    assert r["similarity"].shape == (32, 32) and "5000 sentences entered: the first 32" in r["notes"][0]
    serves(ctx)


def test_embeddings_box_over_the_character_limit(ctx):
    with pytest.raises(UIError, match="the limit is 200,000"):
        embeddings.embed_sentences(ctx, "word " * 40_001, "mean", "default", Session())
    serves(ctx)


def test_embeddings_skip_unreadable_lines_and_take_odd_ones(ctx):
    text = "The team won the cup.\n\x00\x01\x02\n\u200b\n😀🎉\nالفريق فاز\nShares fell \ud800 sharply."
    r = embeddings.embed_sentences(ctx, text, "mean", "default", Session())
    assert (
        r["similarity"].shape == (4, 4) and "1 line(s) with no letters" in r["notes"][0]
    )  # the control-only line became blank
    serves(ctx)


# Batch files uploaded to Predict (more in test_app_predict.py: .png, no text column, Latin-1, empty, bad JSON)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("big.txt", b"a sentence that is long enough\n" * 32_300, "over the 1.0 MB limit"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not valid UTF-8"),
        ("utf16.csv", "text\nhello\n".encode("utf-16-le"), "a NUL byte: this is a binary file or UTF-16"),
        ("blank.txt", b"\n   \n\t\n", "no text to process"),
        ("empty_row.csv", b"id,text\n1,first\n2,   \n3,third\n", "line 3: empty text"),
        ("broken.csv", b'text\n"an unterminated quote\n', "malformed CSV"),
        ("huge_field.csv", b"text\n" + b"a" * 140_000 + b"\n", "field larger than field limit"),
        ("sheet.xlsx", b"PK\x03\x04", "unsupported file type"),
    ],
    ids=[
        "over-the-upload-limit",
        "binary-named-csv",
        "utf16",
        "blank",
        "empty-row",
        "unterminated-quote",
        "huge-field",
        "spreadsheet",
    ],
)
def test_bad_uploads(ctx, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UIError, match=message) as e:
        predict.predict_file(ctx, path, "default", Session(), out_dir=tmp_path)
    assert str(tmp_path) not in str(e.value)  # the file's name, never the server's folders
    serves(ctx)


def test_an_upload_with_a_100000_character_line_is_cut(ctx, tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("A very long line about the match. " * 3000 + "\nShort one.\n", encoding="utf-8")
    r = predict.predict_file(ctx, path, "default", Session(), out_dir=tmp_path)
    assert len(r["table"]) == 2 and r["table"]["text"].str.len().max() == MAX_SENTENCE_CHARS
    serves(ctx)


# Training options (more in test_app_train.py: 6 epochs, 1.5 epochs, batch 7, rates out of range, NaN rate, ...)
with open(REPO / "data" / "v2" / "train.csv", encoding="utf-8", newline="") as f:
    SHIPPED_TRAIN_ROWS = sum(1 for _ in csv.DictReader(f))


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("epochs", 0, "Epochs must be a whole number between 1 and 5"),
        ("epochs", -3, "Epochs must be a whole number between 1 and 5"),
        ("epochs", float("nan"), "Epochs must be a whole number between 1 and 5"),
        ("epochs", "three", "Epochs must be a number; got 'three'"),
        ("epochs", None, "Epochs must be a number; got None"),
        ("batch", 0, "Batch size must be a whole number between 1 and 64"),
        ("batch", -8, "Batch size must be a whole number between 1 and 64"),
        ("lr_encoder", 0, "Encoder learning rate must be between"),
        ("lr_heads", -1e-3, "Head learning rate must be between"),
        ("lr_heads", float("inf"), "Head learning rate must be between"),
        ("n", float("nan"), f"Training sentences must be a whole number between 64 and {SHIPPED_TRAIN_ROWS}"),
    ],
    ids=[
        "epochs-0",
        "epochs-negative",
        "epochs-nan",
        "epochs-text",
        "epochs-none",
        "batch-0",
        "batch-negative",
        "lr-encoder-0",
        "lr-heads-negative",
        "lr-heads-inf",
        "sentences-nan",
    ],
)
def test_training_options_out_of_range(ctx, option, value, message):
    opts = dict(frozen=BACKBONE, epochs=1, batch=8, lr_encoder=5e-5, lr_heads=2e-3, mixing="joint", n=64)
    opts[option] = value
    with pytest.raises(UIError, match=message):
        list(train_run.run_training(ctx, Session(), "default", "pretrained", *opts.values()))
    serves(ctx)


def test_unknown_start_point(ctx):
    with pytest.raises(UIError, match="Choose where to start from"):
        list(train_run.run_training(ctx, Session(), "default", "sideways", BACKBONE, 1, 8, 5e-5, 2e-3, "joint", 64))
    serves(ctx)


class NonFiniteLoss:
    """Stands in for torch.nn.functional inside mtl.losses (the loss of every runner): the loss turns NaN
    (or inf) after `after` calls."""

    def __init__(self, after: int, value: float):
        self.calls, self.after, self.value = 0, after, value

    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)

    def cross_entropy(self, *args, **kwargs):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(*args, **kwargs)
        return loss * self.value if self.calls > self.after else loss


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_a_loss_that_becomes_non_finite_mid_run_keeps_the_last_good_model(ctx, keeper, monkeypatch, value):
    session, _ = keeper
    model, before = session.model, {n: p.detach().clone() for n, p in session.model.named_parameters()}
    monkeypatch.setattr(mtl.losses, "F", NonFiniteLoss(after=5, value=value))  # two losses a step: step 3
    last = run(ctx, session, start="active", choice=SESSION_MODEL)[-1]
    word = "nan" if value != value else "inf"
    assert f"the loss became {word} at step 3" in last["status"] and "active model is unchanged" in last["status"]
    assert "mtl-error" in last["progress"] and not last["adopted"]
    assert session.model is model and not session.running
    assert all(torch.equal(p, before[n]) for n, p in session.model.named_parameters())
    monkeypatch.undo()
    serves(ctx, keeper)


def test_a_loss_that_turns_nan_after_an_epoch_keeps_that_epochs_model(ctx, monkeypatch):
    s = Session()
    monkeypatch.setattr(mtl.losses, "F", NonFiniteLoss(after=2 * 8 + 2, value=float("nan")))  # epoch 2, step 10
    last = run(ctx, s, epochs=2)[-1]
    assert "the loss became nan at step 10" in last["status"] and last["adopted"]
    assert all(torch.isfinite(p).all() for p in s.model.parameters())
    monkeypatch.undo()
    probs = predict.predict_text(ctx, GOOD, SESSION_MODEL, s)["probs"]["topic"]
    assert all(p == p for p in probs.values())
    serves(ctx)


def boom_train(model, data, val, config, stop=None):
    """A training loop that fails mid-run with an error nobody planned for."""
    yield {"type": "start", "frozen": [], "params": {}, "steps": 16, "epochs": 1, "examples": len(data)}
    for step in (1, 2, 3):
        yield {"type": "step", "step": step, "epoch": 1, "loss": 1.0, "losses": {t: 0.5 for t in model.tasks}}
    raise RuntimeError("simulated failure inside the training loop")


def test_an_exception_inside_a_training_run_is_a_message(ctx, keeper, monkeypatch):
    session, _ = keeper
    model = session.model
    monkeypatch.setattr(mtl.train, "train", boom_train)
    last = run(ctx, session)[-1]
    assert "Training failed" in last["status"] and "RuntimeError: simulated failure" in last["status"]
    assert "active model is unchanged" in last["status"] and last["final"] and "mtl-error" in last["progress"]
    assert session.model is model and not session.running and not session.pending
    monkeypatch.undo()
    assert "Training finished" in run(ctx, Session())[-1]["status"]  # the next run works
    serves(ctx, keeper)


# Saving under a name (more in test_app_train.py: "", "../evil", spaces, ".hidden", 65 characters, "default", "Default")


@pytest.mark.parametrize(
    "name, message",
    [
        ("/tmp/evil", "cannot contain '/'"),
        ("..\\evil", "cannot contain '/' or '\\\\'"),
        ("../x", "cannot contain '/'"),
        ("DEFAULT", "'default' is the shipped model"),
        ("nul", "reserved name"),
        ("COM1", "reserved name"),
        ("x" * 300, "300 characters, over the limit of 64"),
        ("   ", "Give the model a name first"),
        (None, "Give the model a name first"),
        ("-dash-first", "Names use letters, digits"),
        ("modèle", "Names use letters, digits"),
        ("a\x00b", "Names use letters, digits"),
        ("keeper", "already exists"),
        ("KEEPER", "already exists"),
    ],
    ids=[
        "absolute-path",
        "backslash",
        "dot-dot",
        "DEFAULT",
        "nul",
        "COM1",
        "300-characters",
        "whitespace",
        "none",
        "dash-first",
        "non-ascii",
        "nul-byte",
        "existing",
        "existing-other-case",
    ],
)
def test_bad_save_names(ctx, keeper, name, message):
    session, _ = keeper
    before = sorted(p.name for p in ctx.saved_dir.iterdir())
    with pytest.raises(UIError, match=message):
        train_save.save_session_model(ctx, session, name)
    assert sorted(p.name for p in ctx.saved_dir.iterdir()) == before  # nothing written, nothing removed
    serves(ctx, keeper)


def test_a_link_inside_the_model_folder_is_never_followed(ctx, keeper, tmp_path):
    session, _ = keeper
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, ctx.saved_dir / "escape")
    os.symlink(tmp_path / "missing", ctx.saved_dir / "dangling")
    try:
        for name in ("escape", "dangling"):
            with pytest.raises(UIError, match="link named .* already exists .* never followed"):
                train_save.save_session_model(ctx, session, name)
        assert list(outside.iterdir()) == [] and not (tmp_path / "missing").exists()
        assert "escape" not in ctx.saved_models()
        with pytest.raises(UIError, match="no saved model named 'escape'"):
            ctx.resolve("escape", Session())
    finally:
        (ctx.saved_dir / "escape").unlink()
        (ctx.saved_dir / "dangling").unlink()
    serves(ctx, keeper)


def test_saves_are_atomic_renames_that_never_overwrite(ctx, keeper, monkeypatch):
    session, _ = keeper
    real_rename = os.rename

    def someone_was_faster(src, dst):  # the name appears between the check and the rename
        (Path(dst) / "mtl.json").parent.mkdir()
        (Path(dst) / "mtl.json").write_text("{}")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", someone_was_faster)
    with pytest.raises(UIError, match="appeared while saving"):
        train_save.save_session_model(ctx, session, "raced")
    monkeypatch.undo()
    assert (ctx.saved_dir / "raced" / "mtl.json").read_text() == "{}"  # the other one is kept as it was
    assert not list(ctx.saved_dir.glob(".saving-*"))  # and the half-done save is cleaned up
    shutil.rmtree(ctx.saved_dir / "raced")
    assert train_save.save_session_model(ctx, session, "second") == "second"
    assert not list(ctx.saved_dir.glob(".saving-*"))
    shutil.rmtree(ctx.saved_dir / "second")
    serves(ctx, keeper)


def test_the_saved_model_cap(ctx, keeper):
    session, _ = keeper
    limits = ctx.limits
    ctx.limits = dataclasses.replace(limits, saved_models=1)
    try:
        with pytest.raises(UIError, match="already holds 1 saved models, its limit"):
            train_save.save_session_model(ctx, session, "one-too-many")
    finally:
        ctx.limits = limits
    assert not (ctx.saved_dir / "one-too-many").exists()
    serves(ctx, keeper)


# Saved models that are damaged on disk: a message for whoever picks them, the others keep working


def damaged_copy(ctx, name, damage):
    shutil.copytree(ctx.saved_dir / "keeper", ctx.saved_dir / name)
    damage(ctx.saved_dir / name, json.loads((ctx.saved_dir / name / "mtl.json").read_text()))
    return digest(ctx.saved_dir / name)


def truncate_heads(path, meta):
    heads = path / meta["files"]["heads"]
    heads.write_bytes(heads.read_bytes()[:100])


def write_meta(edit):
    def damage(path, meta):
        edit(meta)
        (path / "mtl.json").write_text(json.dumps(meta))

    return damage


@pytest.mark.parametrize(
    "damage, message",
    [
        (truncate_heads, "checksum mismatch: the file is corrupted or truncated"),
        (lambda p, m: (p / m["files"]["heads"]).unlink(), "missing weight file"),
        (write_meta(lambda m: m.update(metrics="very good")), "field 'metrics' must be a dict"),
        (write_meta(lambda m: m.update(train=[1, 2])), "field 'train' must be a dict or null"),
        (write_meta(lambda m: m["tasks"]["topic"].pop()), "the label list does not match the head"),
        (write_meta(lambda m: m["model"].update(base_model="/nonexistent/base")), "cannot load base model"),
    ],
    ids=[
        "truncated-weights",
        "missing-weights",
        "metrics-wrong-type",
        "train-wrong-type",
        "labels-vs-head",
        "missing-base-model",
    ],
)
def test_a_damaged_saved_model_gets_a_message(ctx, keeper, damage, message):
    name = "damaged"
    before = damaged_copy(ctx, name, damage)
    try:
        with pytest.raises(UIError, match=f"The saved model 'damaged' cannot be loaded: .*{message}"):
            predict.predict_text(ctx, GOOD, name, Session())
        with pytest.raises(UIError, match="cannot be loaded"):
            ctx.model_info(name, Session())
        assert digest(ctx.saved_dir / name) == before  # a failed load changes nothing
    finally:
        shutil.rmtree(ctx.saved_dir / name)
    serves(ctx, keeper)


def test_a_saved_folder_without_mtl_json_is_not_a_model(ctx, keeper):
    shutil.copytree(ctx.saved_dir / "keeper", ctx.saved_dir / "half")
    (ctx.saved_dir / "half" / "mtl.json").unlink()
    try:
        assert "half" not in ctx.saved_models()
        with pytest.raises(UIError, match="no saved model named 'half'"):
            predict.predict_text(ctx, GOOD, "half", Session())
    finally:
        shutil.rmtree(ctx.saved_dir / "half")
    serves(ctx, keeper)


def test_the_app_refuses_to_start_on_a_broken_checkpoint(tmp_path, capsys):
    import app

    broken = tmp_path / "broken"
    shutil.copytree(DEFAULT, broken)
    (broken / "mtl.json").write_text("{oops")
    assert app.main(["--checkpoint", str(broken), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not valid JSON" in err and "Traceback" not in err


# Memory: trained session models are bounded


def test_only_the_most_recent_session_models_stay_in_memory(ctx):
    # the same app, with its own record of trained sessions and a cap of 2
    small = ctx.with_limits(dataclasses.replace(ctx.limits, session_models=2))
    a, b, c = Session(), Session(), Session()
    for s in (a, b, c, b):
        small.adopt(s, copy.deepcopy(ctx.default_model.heads), {"steps": 1})
    assert a.model is None and b.model is not None and c.model is not None
    with pytest.raises(UIError, match="released to free memory: this app keeps the 2 most recently trained"):
        predict.predict_text(small, GOOD, SESSION_MODEL, a)
    with pytest.raises(UIError, match="released to free memory before it was saved"):
        train_save.save_session_model(small, a, "late")
    small.adopt(a, copy.deepcopy(ctx.default_model.heads), {"steps": 1})  # a trains again: c is the oldest
    assert a.model is not None and b.model is not None and c.model is None
    serves(ctx)


# Public-link limits: one switch, every cap


def test_public_limits_apply(ctx, tmp_path, keeper):
    assert app_is_public(public=True) and app_is_public(share=True) and not app_is_public()
    session, _ = keeper
    limits, ctx.limits = ctx.limits, PUBLIC_LIMITS
    try:
        pub = PUBLIC_LIMITS
        assert ctx.public and pub.max_epochs < train_run.MAX_EPOCHS
        with pytest.raises(UIError, match=f"Epochs must be a whole number between 1 and {pub.max_epochs}"):
            train_run.make_config(ctx, BACKBONE[:-1], pub.max_epochs + 1, 8, 5e-5, 2e-3, "joint", 64)
        # heads only: the encoder's output is cached, so more (cheap) epochs are allowed, and no more
        train_run.make_config(ctx, BACKBONE, pub.max_epochs_heads_only, 8, 5e-5, 2e-3, "joint", 64)
        with pytest.raises(UIError, match=f"between 1 and {pub.max_epochs_heads_only}"):
            train_run.make_config(ctx, BACKBONE, pub.max_epochs_heads_only + 1, 8, 5e-5, 2e-3, "joint", 64)
        with pytest.raises(UIError, match=f"Training sentences must be a whole number between 64 and {640}"):
            train_run.make_config(ctx, BACKBONE, 1, 8, 5e-5, 2e-3, "joint", pub.train_sentences + 1)
        train_run.make_config(ctx, BACKBONE, pub.max_epochs, 8, 5e-5, 2e-3, "joint", pub.train_sentences)
        r = embeddings.embed_sentences(ctx, "\n".join(f"line {i}" for i in range(40)), "mean", "default", None)
        assert r["similarity"].shape == (pub.embed_sentences,) * 2
        rows = tmp_path / "rows.txt"
        rows.write_text("a sentence\n" * (pub.batch_rows + 1))
        with pytest.raises(UIError, match=f"over the limit of {pub.batch_rows}"):
            predict.predict_file(ctx, rows, "default", None, out_dir=tmp_path)
        big = tmp_path / "big.txt"
        big.write_text("a sentence that is long enough\n" * 7000)
        with pytest.raises(UIError, match="over the 200 KB limit"):
            predict.predict_file(ctx, big, "default", None, out_dir=tmp_path)
        long = predict.predict_text(ctx, "x" * 5000, "default", None)
        assert len(long["text"]) == pub.sentence_chars
        ctx.limits = dataclasses.replace(pub, train_seconds=0)
        assert "Time limit reached" in run(ctx, Session())[-1]["status"]
    finally:
        ctx.limits = limits
    serves(ctx, keeper)


def app_is_public(public=False, share=False):
    import app

    return app.is_public(Namespace(public=public, share=share))


def test_public_app_has_the_caps_in_its_controls_and_queue(ctx):
    import app

    pub = ctx.with_limits(PUBLIC_LIMITS)
    demo = app.build_demo(pub, training_slots=4)
    sliders = {b.elem_id: b for b in demo.blocks.values() if type(b).__name__ == "Slider"}
    assert sliders["train-epochs"].maximum == PUBLIC_LIMITS.max_epochs_heads_only
    assert sliders["train-sentences"].maximum == PUBLIC_LIMITS.train_sentences
    assert demo._queue.max_size == PUBLIC_LIMITS.queue_size
    # one training at a time, whatever --training-slots says, and one more waiting (mtl_app/admission.py)
    assert (pub.training_gate.slots, pub.training_gate.capacity) == (1, 2)
    for api in ("train", "sweep", "logme"):  # admitted by the context, they never wait in Gradio's queue
        fn = next(f for f in demo.fns.values() if f.api_name == api)
        assert fn.concurrency_limit is None
    predict_fn = next(f for f in demo.fns.values() if f.api_name == "predict")
    # each prediction its own event, so a malformed one fails alone; ForwardPasses batches them (up to 16)
    assert not predict_fn.batch and predict_fn.concurrency_limit == predict.PREDICT_CONCURRENCY


# The command line (more in test_cli.py: missing file, 0 epochs, NaN rate, bad --freeze, empty --text, ...)


@pytest.fixture(scope="module")
def tiny_ck(tmp_path_factory, tiny_bert):
    tasks = {"topic": ["business", "film", "sports"], "sentiment": ["negative", "neutral", "positive"]}
    path = tmp_path_factory.mktemp("cli") / "ck"
    save_checkpoint(new_model(tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=0), path)
    return path


def cli(capsys, *argv):
    code = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--batch-size", "0"], "batch_size must be >= 1"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--epochs", "-3"], "epochs must be >= 1"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--lr-encoder", "0"], "lr_encoder must be > 0.0"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--lr-heads", "-0.01"], "lr_heads must be > 0.0"),
        (["train", "--data", "{toy}", "--output", "{tmp}/o", "--lr-encoder", "inf"], "lr_encoder must be finite"),
        (["train", "--data", "{toy}", "--val", "{badlabel}", "--output", "{tmp}/o"], "label 'Sprots' is not in"),
        (
            ["train", "--data", "{toy}", "--output", "{file}/o", "--model", "{tiny}", "--quiet", "--epochs", "1"],
            "Not a directory",
        ),
        (["eval", "--checkpoint", "{ck}", "--data", "{badlabel}"], "label 'Sprots' is not in the label set"),
        (["predict", "--checkpoint", "{ck}", "--input", "{latin1}"], "not valid UTF-8"),
        (["predict", "--checkpoint", "{ck}", "--input", "{empty}"], "no text to process"),
        (["predict", "--checkpoint", "{ck}", "--text", "hi", "--output", "{tmp}/missing/p.csv"], "No such file"),
        (["predict", "--checkpoint", "{broken}", "--text", "hi"], "corrupted or truncated"),
        (["encode", "--input", "{toy}", "--output", "{tmp}/nope/e.npy", "--model", "{tiny}"], "No such file"),
    ],
    ids=[
        "batch-size-0",
        "epochs-negative",
        "lr-encoder-0",
        "lr-heads-negative",
        "lr-encoder-inf",
        "val-label-outside-set",
        "output-under-a-file",
        "eval-label-outside-set",
        "input-not-utf8",
        "input-empty",
        "output-folder-missing",
        "checkpoint-truncated",
        "encode-output-folder-missing",
    ],
)
def test_cli_errors_are_one_line_and_the_next_command_works(
    argv, message, tmp_path, toy_csv, tiny_bert, tiny_ck, capsys
):
    bad = write_csv(tmp_path / "badlabel.csv", [("the team won", "Sprots", "positive")])
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "a_file").write_text("not a folder")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_ck, broken)
    heads = next(broken.glob("heads.*"))
    heads.write_bytes(heads.read_bytes()[:-10])
    before = digest(tiny_ck)
    argv = [
        a.format(
            toy=toy_csv,
            tmp=tmp_path,
            tiny=tiny_bert,
            ck=tiny_ck,
            badlabel=bad,
            latin1=latin1,
            empty=tmp_path / "empty.txt",
            file=tmp_path / "a_file",
            broken=broken,
        )
        for a in argv
    ]
    code, _, err = cli(capsys, *argv)
    lines = err.strip().splitlines()  # train prints what it loaded first, then the error
    assert code == 2 and lines[-1].startswith("error: ") and message in lines[-1], err
    assert "Traceback" not in err and sum(line.startswith("error") for line in lines) == 1
    code, out, _ = cli(capsys, "predict", "--checkpoint", tiny_ck, "--text", "the team won")
    assert code == 0 and "topic=" in out
    assert digest(tiny_ck) == before


@pytest.mark.parametrize(
    "text",
    ["word " * 20_000, "😀🎉🔥", "\x00\x01 the team won \x1b", "الفريق فاز"],
    ids=["100k", "emoji", "ctrl", "rtl"],
)
def test_cli_predicts_odd_text(text, tiny_ck, capsys):
    t0 = time.perf_counter()
    code, out, err = cli(capsys, "predict", "--checkpoint", tiny_ck, "--text", text)
    assert code == 0 and "topic=" in out, err
    assert time.perf_counter() - t0 < 20


# Data files (more in test_data.py: no text column, empty text, ragged rows, empty file, Latin-1, labels)


@pytest.mark.parametrize(
    "name, content, message, kwargs",
    [
        ("utf16.csv", "text,topic\nhello,x\n".encode("utf-16-le"), "a NUL byte", {}),
        ("nul.csv", b"text,topic\nhello\x00there,x\nbye,y\n", "line 2: a NUL byte", {}),
        ("dup.csv", b"text,text\nhello,x\n", "duplicate column names", {}),
        ("list.jsonl", b'{"text": "a", "topic": ["x"]}\n', "field 'topic' must be text, got list", {}),
        ("huge.csv", b"text,topic\n" + b"a" * 140_000 + b",x\n", "field larger than field limit", {}),
        (
            "big.csv",
            b"text,topic\n" + b"hello,x\nbye,y\n" * 1000,
            "file is 14 KB, over the 1 KB limit",
            {"max_bytes": 1000},
        ),
        ("rows.csv", b"text,topic\n" + b"hello,x\nbye,y\n" * 10, "more than 5 rows", {"max_rows": 5}),
        (
            "unknown.csv",
            b"text,colour\nhello,red\nbye,blue\n",
            "column 'colour' is not a known task",
            {"label_sets": {"topic": ["x", "y"]}},
        ),
    ],
    ids=[
        "utf16-without-bom",
        "nul-byte",
        "duplicate-header",
        "list-field",
        "huge-field",
        "over-the-byte-limit",
        "over-the-row-limit",
        "unknown-task-column",
    ],
)
def test_bad_data_files(tmp_path, name, content, message, kwargs):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        load_labelled(path, **kwargs)
    assert str(path) in str(e.value)
    assert len(load_labelled(write_csv(tmp_path / "good.csv", TOY))) == len(TOY)  # the next load is fine


def test_a_text_file_with_control_characters_and_rtl_loads(tmp_path):
    path = tmp_path / "odd.txt"
    path.write_text("the team\x07 won\n\u202eevil\u202c\nالفريق فاز\n😀\n", encoding="utf-8")
    assert len(load_texts(path)) == 4


# Checkpoints (more in test_checkpoint.py: truncated, missing, pickle payload, bad JSON, wrong fields, ...)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(encoder_params=["a", 1]), "'encoder_params' must be a list of strings"),
        (lambda m: m.update(base_model_sha256=12), "'base_model_sha256' must be a str or null"),
        (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
        (lambda m: m["sha256"].update({m["files"]["heads"]: None}), "'sha256' must map file names"),
        (lambda m: m.update(freeze="backbone"), "'freeze' must be a list"),
        (lambda m: m.update(tasks={}), "a model needs at least one task"),
        (lambda m: m["tasks"].update(topic=["film", "film", "sports"]), "duplicate labels"),
        (lambda m: m["model"].update(max_seq_length="long"), "max_seq_length must be an integer"),
    ],
    ids=[
        "encoder-params-types",
        "base-hash-type",
        "format-version",
        "sha256-type",
        "freeze-type",
        "no-tasks",
        "duplicate-labels",
        "seq-length-type",
    ],
)
def test_checkpoint_json_with_wrong_fields(tiny_ck, tmp_path, edit, message):
    path = tmp_path / "ck"
    shutil.copytree(tiny_ck, path)
    meta = json.loads((path / "mtl.json").read_text())
    edit(meta)
    (path / "mtl.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, "cpu")
    load_checkpoint(tiny_ck, "cpu")  # the good one still loads


def test_a_corrupted_encoder_file_is_refused(tiny_model, tmp_path):
    tiny_model.trained_params = {n for n, _ in tiny_model.encoder[0].model.named_parameters() if ".layer.1." in n}
    path = save_checkpoint(tiny_model, tmp_path / "ck")
    enc = next(path.glob("encoder.*.safetensors"))
    data = bytearray(enc.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern, same size
    enc.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch: the file is corrupted or truncated"):
        load_checkpoint(path, "cpu")


def test_a_base_model_with_only_pickled_weights_is_refused(tiny_bert, tiny_ck, tmp_path):
    base = tmp_path / "pickled_base"
    shutil.copytree(tiny_bert, base)
    weights = next(base.glob("*.safetensors"))
    torch.save({"never": torch.zeros(1)}, base / "pytorch_model.bin")  # the pickle we must never open
    weights.unlink()
    path = tmp_path / "ck"
    shutil.copytree(tiny_ck, path)
    meta = json.loads((path / "mtl.json").read_text())
    meta["model"]["base_model"] = str(base)
    (path / "mtl.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"weights only in pickle files \(pytorch_model.bin\)"):
        load_checkpoint(path, "cpu")


# Over HTTP: the served app


@pytest.fixture(scope="module")
def server(ctx):
    demo, url = launch(ctx)
    yield url
    demo.close()


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "etc/passwd",
        "/proc/self/environ",
        str(REPO / "app.py"),
        "app.py",
        "checkpoints/default/mtl.json",
        str(DEFAULT / "mtl.json"),
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        str(Path(sys.prefix) / "pyvenv.cfg"),
    ],
)
def test_the_app_serves_no_file_outside_its_own(server, path):
    for route in ("gradio_api/file=", "gradio_api/file/", "file="):
        r = httpx.get(server + route + path, timeout=30)
        assert r.status_code in (403, 404), (route, path, r.status_code)
        assert b"root:" not in r.content and b"mtl-checkpoint" not in r.content and b"import " not in r.content


def test_the_api_refuses_a_server_path_as_an_uploaded_file(server):
    data = {"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "default"]}
    event = httpx.post(server + "gradio_api/call/predict_file", json=data, timeout=30).json()["event_id"]
    body = httpx.get(server + f"gradio_api/call/predict_file/{event}", timeout=60).text
    assert "event: error" in body and "root:" not in body
    assert httpx.get(server + "gradio_api/info", timeout=30).status_code == 200  # still serving


def test_a_request_body_over_the_limit_is_refused_before_parsing(server):
    big = {"data": ["x" * (MAX_REQUEST_BYTES + 1), "default"], "fn_index": 0, "session_hash": "big"}
    r = httpx.post(server + "gradio_api/queue/join", json=big, timeout=60)
    assert r.status_code == 413 and r.text == "Request body too large"

    def chunks():  # no Content-Length: counted as it arrives, cut off at the limit
        for _ in range(3):
            yield b"x" * MAX_REQUEST_BYTES

    with pytest.raises(httpx.HTTPError):
        httpx.post(server + "gradio_api/queue/join", content=chunks(), timeout=60).raise_for_status()
    assert httpx.get(server + "gradio_api/info", timeout=30).status_code == 200  # still serving


def test_a_training_crash_is_shown_to_its_user_and_others_keep_predicting(server, monkeypatch):
    from gradio_client import Client

    def slow_boom(model, data, val, config, stop=None):
        yield from boom_train(model, data, val, config, stop)

    monkeypatch.setattr(mtl.train, "train", slow_boom)
    trainer, other = Client(server, verbose=False), Client(server, verbose=False)
    final = trainer.predict("default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "joint", 64, api_name="/train")
    assert "Training failed" in final[3] and "simulated failure" in final[3]
    topic, _, info = other.predict(GOOD, "default", api_name="/predict")
    assert topic["label"] == "Travel" and "ms for one forward pass" in info
    monkeypatch.undo()
    final = trainer.predict("default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "joint", 64, api_name="/train")
    assert "Training finished" in final[3]  # the same user can train again


def test_stopping_mid_epoch_leaves_the_app_responsive(server):
    from gradio_client import Client

    trainer, other = Client(server, verbose=False), Client(server, verbose=False)
    job = trainer.submit("default", "pretrained", BACKBONE[:5], 1, 8, 5e-5, 5e-3, "joint", 512, api_name="/train")
    end = time.monotonic() + 120
    while not any(isinstance(o[1], dict) and len(o[1].get("data") or []) >= 4 for o in job.outputs()):
        assert time.monotonic() < end
        time.sleep(0.05)
    assert "Stopping" in trainer.predict(api_name="/stop")
    t0 = time.monotonic()
    topic, _, _ = other.predict(GOOD, "default", api_name="/predict")
    assert topic["label"] == "Travel" and time.monotonic() - t0 < 15
    final = job.result(timeout=120)
    assert "Stopped" in final[3] and "of 64 steps" in final[3]
    assert (
        "Training finished"
        in trainer.predict(*("default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "joint", 64), api_name="/train")[3]
    )


@pytest.mark.parametrize(
    "text, expect",
    [("😀🎉", "knows none of these characters"), ("x" * 100_000, "100,000 characters"), ("\x00\x01", "only spaces")],
    ids=["emoji", "100k", "control"],
)
def test_odd_text_through_the_api(server, text, expect):
    from gradio_client import Client

    *_, info = Client(server, verbose=False).predict(text, "default", api_name="/predict")
    assert expect in info


def test_after_all_of_that_the_saved_model_loads_and_predicts_as_before(ctx, keeper):
    session, saved = keeper
    assert digest(ctx.saved_dir / "keeper") == saved
    fresh = load_checkpoint(ctx.saved_dir / "keeper", "cpu")
    texts = [GOOD, "Parliament passed the budget bill."]
    assert torch.allclose(fresh.predict_proba(texts)["topic"], session.model.predict_proba(texts)["topic"], atol=1e-5)
