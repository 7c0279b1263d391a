"""The app's handlers (mtl/ui*.py), called directly: no server, no browser."""

import copy
import csv
import os

import numpy as np
import pytest
import torch
from app_helpers import BACKBONE, make_context

from mtl import ui, ui_embed, ui_freeze, ui_train
from mtl.cli import prediction_rows
from mtl.ui import SESSION_MODEL, Session, UIError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"), update_seconds=0)  # every step an update


def weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def run(ctx, session, choice="default", start="pretrained", frozen=BACKBONE, epochs=1, batch=8, lr_heads=5e-3, n=64):
    return list(ui_train.run_training(ctx, session, choice, start, frozen, epochs, batch, 5e-5, lr_heads, "joint", n))


# sessions and model choice


def test_a_copied_session_is_a_new_empty_session():
    s = Session()
    s.model, s.run = object(), {"steps": 3}
    c = copy.deepcopy(s)
    assert c.model is None and c.run is None and c.stop is not s.stop and not c.running


def test_choices_and_resolve(ctx):
    s = Session()
    assert [v for _, v in ctx.choices(s)] == ["default"]
    assert ctx.resolve("default", s)[0] is ctx.default_model
    with pytest.raises(UIError, match="no trained model"):
        ctx.resolve(SESSION_MODEL, s)
    with pytest.raises(UIError, match="not a model name"):
        ctx.resolve("../checkpoints/default", s)
    with pytest.raises(UIError, match="no saved model"):
        ctx.resolve("nothing-here", s)
    s.model = object()
    assert ctx.choices(s)[-1] == (SESSION_MODEL, SESSION_MODEL)
    assert ctx.resolve(SESSION_MODEL, s)[0] is s.model


def test_model_info_names_the_model_and_its_accuracy(ctx):
    info = ctx.model_info("default", Session())
    assert "shipped model" in info and "Validation accuracy: topic" in info


# Predict


def test_predict_gives_every_label_of_both_tasks(ctx):
    r = ui.predict_text(ctx, "Not bad at all for a budget airline.", "default", Session())
    assert set(r["probs"]) == set(ctx.tasks)
    for task, labels in ctx.tasks.items():
        assert set(r["probs"][task]) == set(labels)
        assert sum(r["probs"][task].values()) == pytest.approx(1.0, abs=1e-4)
    assert r["top"]["topic"][0] == "Travel" and r["ms"] > 0 and r["model"] == "default"
    assert "ms for one forward pass" in ui.timing_markdown(r, ctx)


@pytest.mark.parametrize("text", ["", "   \n\t ", None])
def test_predict_refuses_empty_text(ctx, text):
    with pytest.raises(UIError, match="empty"):
        ui.predict_text(ctx, text, "default", Session())


def test_predict_shortens_very_long_text_with_a_note(ctx):
    r = ui.predict_text(ctx, "The match was great. " * 5000, "default", Session())
    assert len(r["text"]) == ui.MAX_SENTENCE_CHARS and "only the first" in r["notes"][0]


def test_examples_cover_every_label_and_the_model_agrees(ctx):
    texts = [t for t, _, _ in ui.PREDICT_EXAMPLES]
    assert {t for _, t, _ in ui.PREDICT_EXAMPLES} == set(ctx.tasks["topic"])
    assert {s for _, _, s in ui.PREDICT_EXAMPLES} == set(ctx.tasks["sentiment"])
    preds = ctx.default_model.predict(texts)
    right = sum(p["topic"]["label"] == t for p, (_, t, _) in zip(preds, ui.PREDICT_EXAMPLES))
    assert right >= len(texts) - 2


def test_predict_file_matches_the_cli_columns(ctx, tmp_path):
    src = tmp_path / "my sentences.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text"], ["1", "The striker scored twice."], ["2", "Shares fell 5%."]])
    r = ui.predict_file(ctx, src, "default", Session(), out_dir=tmp_path)
    expected = prediction_rows(ctx.default_model, ["The striker scored twice.", "Shares fell 5%."])
    assert list(r["table"].columns) == list(expected[0])
    with open(r["csv"], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(expected[0]) and [row["topic"] for row in rows] == [e["topic"] for e in expected]
    assert "2 sentences" in r["status"]
    txt = tmp_path / "lines.txt"
    txt.write_text("One sentence.\n\nAnother one.\n")
    assert len(ui.predict_file(ctx, txt, "default", Session(), out_dir=tmp_path)["table"]) == 2


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
            ui.predict_file(ctx, path, "default", Session(), out_dir=tmp_path)
        assert str(tmp_path) not in str(e.value)  # the file's name, not the server's path
    with pytest.raises(UIError, match="Upload a file"):
        ui.predict_file(ctx, None, "default", Session())
    big = tmp_path / "big.txt"
    big.write_text("a sentence\n" * (ui.MAX_BATCH_ROWS + 1))
    with pytest.raises(UIError, match="over the limit"):
        ui.predict_file(ctx, big, "default", Session(), out_dir=tmp_path)


# Embeddings


def test_parse_sentences_limits():
    with pytest.raises(UIError, match="at least two"):
        ui_embed.parse_sentences("only one\n\n   ")
    lines, notes = ui_embed.parse_sentences("\n".join(f"sentence {i}" for i in range(300)))
    assert len(lines) == ui_embed.MAX_EMBED_SENTENCES and "300 sentences" in notes[0]
    lines, notes = ui_embed.parse_sentences("short\n" + "x" * 5000)
    assert len(lines[1]) == ui.MAX_SENTENCE_CHARS and notes
    with pytest.raises(UIError, match="limit"):
        ui_embed.parse_sentences("a\n" * (ui.MAX_INPUT_CHARS // 2 + 1))


def test_embed_sentences(ctx):
    text = "The team won the cup final.\nThe side lifted the trophy after the final.\nInflation rose to 4%.\n<script>x"
    r = ui_embed.embed_sentences(ctx, text, "mean", "default", Session())
    sim = r["similarity"]
    assert sim.shape == (4, 4) and np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1, atol=1e-5)
    assert r["pair"] == (0, 1) and r["dim"] == 384 and "384 numbers" in r["summary"]
    scatter = r["scatter"]
    assert scatter["PC1"].notna().sum() == 4 and {"PC1", "PC2", "sentence", "predicted topic"} <= set(scatter.columns)
    assert set(scatter["predicted topic"]) == set(ctx.tasks["topic"])  # every label, for a stable legend
    assert "&lt;script&gt;x" in r["heatmap"] and "<script>" not in r["heatmap"]
    assert 0 < r["variance"].sum() <= 1 + 1e-9
    cls = ui_embed.embed_sentences(ctx, text, "cls", "default", Session())
    assert not np.allclose(cls["similarity"], sim) and "trained with mean pooling" in cls["summary"]
    assert ctx.default_model.encoder[1].pooling_mode == "mean"  # the shared model is left as it was
    with pytest.raises(UIError, match="Pooling"):
        ui_embed.embed_sentences(ctx, text, "median", "default", Session())


def test_pca_pairs_and_colours():
    emb = np.array([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1]])
    coords, ratio = ui_embed.pca_2d(emb)
    assert coords.shape == (3, 2) and ratio[0] >= ratio[1] >= 0
    assert ui_embed.pca_2d(emb[:2])[0].shape == (2, 2)
    assert ui_embed.extreme_pairs(ui_embed.cosine_matrix(emb)) == ((0, 1), (0, 2))
    assert ui_embed.cell_color(1.0)[1] == "#ffffff" and ui_embed.cell_color(-0.5)[0].startswith("rgb")
    assert ui_embed.num(-0.001) == "0.00" and ui_embed.num(0.456) == "0.46"


# Freezing


def test_presets_and_checkboxes_round_trip(ctx):
    comps = ui_freeze.components(ctx)
    assert comps == [*BACKBONE, "head.topic", "head.sentiment"]
    assert ui_freeze.preset_for_frozen(ctx, []) == ("none", None)
    assert ui_freeze.preset_for_frozen(ctx, comps) == ("all", None)
    assert ui_freeze.preset_for_frozen(ctx, BACKBONE) == ("backbone", None)
    for k in range(6):
        assert ui_freeze.preset_for_frozen(ctx, ui_freeze.frozen_for_preset(ctx, "bottom", k)) == ("bottom", k)
    assert ui_freeze.preset_for_frozen(ctx, ["head.topic"]) == ("head.topic", None)
    assert ui_freeze.preset_for_frozen(ctx, ["layer.3", "head.topic"]) == ("custom", None)
    frozen, show_k, _ = ui_freeze.preset_changed(ctx, "bottom", 3, [], "pretrained")
    assert frozen == ["embeddings", "layer.0", "layer.1", "layer.2"] and show_k
    assert ui_freeze.preset_changed(ctx, "custom", 0, ["layer.4"], "pretrained")[0] == ["layer.4"]
    preset, k, show_k, _ = ui_freeze.frozen_changed(ctx, ["embeddings", "layer.0"], "pretrained")
    assert (preset, k, show_k) == ("bottom", 1, True)
    with pytest.raises(UIError, match="Unknown component"):
        ui_freeze.frozen_changed(ctx, ["layer.9"], "pretrained")


def test_trainable_summary_counts_and_explains(ctx):
    assert "Trainable: 4,235 of" in ui_freeze.trainable_summary(ctx, BACKBONE)
    everything = ui_freeze.trainable_summary(ctx, ui_freeze.components(ctx))
    assert "Trainable: 0 of" in everything and "Everything is frozen" in everything
    # measured (results/sweep.json): a frozen random head's task still learns through a trainable encoder
    assert "still learns" in ui_freeze.trainable_summary(ctx, ["head.topic"], "pretrained")
    assert "stays at chance" in ui_freeze.trainable_summary(ctx, [*BACKBONE, "head.topic"], "pretrained")
    assert "30" in ui_freeze.trainable_summary(ctx, BACKBONE)
    assert "kept fixed" in ui_freeze.trainable_summary(ctx, ["head.topic"], "active")


def test_training_options_are_checked_against_the_demo_limits(ctx):
    config, frozen, n = ui_train.make_config(ctx, ["layer.0", "embeddings"], 2, 16, 2e-5, 1e-3, "alternate", 640)
    assert config.freeze == "embeddings,layer.0" and config.epochs == 2 and n == 640
    assert ui_train.make_config(ctx, [], 1, 8, 1e-5, 5e-4, "joint", 64)[0].freeze == "none"
    bad = [
        dict(epochs=6),
        dict(epochs=1.5),
        dict(batch=7),
        dict(lr_encoder=1.0),
        dict(lr_heads=float("nan")),
        dict(mixing="random"),
        dict(n=10),
        dict(n=10**6),
        dict(frozen=["layer.42"]),
    ]
    for case in bad:
        opts = dict(frozen=[], epochs=1, batch=8, lr_encoder=5e-5, lr_heads=2e-3, mixing="joint", n=64) | case
        with pytest.raises(UIError):
            ui_train.make_config(ctx, *opts.values())


# Training


def test_a_short_run_streams_losses_and_becomes_the_session_model(ctx):
    before = weights(ctx.default_model)
    s = Session()
    updates = run(ctx, s)
    sizes = [len(u["loss"]) for u in updates]
    assert sizes == sorted(sizes) and len(set(sizes)) >= 4  # the curve grows step by step
    last = updates[-1]
    assert last["final"] and last["adopted"] and "Training finished" in last["status"]
    assert set(last["loss"]["task"]) == set(ctx.tasks) and len(last["val"]) == 1
    assert s.model is not None and s.model is not ctx.default_model and not s.running
    assert s.run["sentences"] == 64 and s.run["metrics"]["topic"]["n"] == 48
    assert same_weights(before, weights(ctx.default_model))  # the shared model is never trained
    assert ctx.resolve(SESSION_MODEL, s)[0] is s.model
    # keep training the session's model: a copy again, the previous model object is not touched
    previous = weights(s.model)
    model = s.model
    run(ctx, s, choice=SESSION_MODEL, start="active", frozen=BACKBONE[:-1], n=64)
    assert s.model is not model and same_weights(previous, weights(model))


def test_the_plot_waits_until_every_task_has_a_point(ctx):
    view = ui_train.RunView(["topic", "sentiment"], 64, 48)
    assert view.plot_frame() is None  # never an empty table: the plot would fix an empty legend
    view.on({"type": "step", "step": 1, "epoch": 1, "losses": {"topic": 2.1}})
    assert view.plot_frame() is None and len(view.loss_frame()) == 1
    view.on({"type": "step", "step": 2, "epoch": 1, "losses": {"sentiment": 1.1}})
    frame = view.plot_frame()
    assert list(frame["task"]) == ["topic", "sentiment"] and str(frame["step"].dtype) == "int64"
    updates = list(
        ui_train.run_training(ctx, Session(), "default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "alternate", 64)
    )
    assert all(u["plot"] is None or set(u["plot"]["task"]) == set(ctx.tasks) for u in updates)
    assert updates[-1]["plot"] is not None


def test_everything_frozen_is_explained_and_runs_no_loop(ctx):
    s = Session()
    updates = run(ctx, s, frozen=ui_freeze.components(ctx))
    last = updates[-1]
    assert "nothing to train" in last["status"] and not last["adopted"] and len(last["loss"]) == 0
    assert s.model is None and last["val"]["epoch"].tolist() == ["start (no training)"]


def test_stop_ends_a_run_and_keeps_the_model(ctx):
    s = Session()
    gen = ui_train.run_training(ctx, s, "default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "joint", 256)
    for u in gen:
        if len(u["loss"]) >= 4:
            assert "Stopping" in ui_train.stop_training(s)
            break
    rest = list(gen)
    last = rest[-1]
    assert "Stopped" in last["status"] and last["adopted"] and s.model is not None
    assert s.run["steps"] < 32 and s.run["stopped"] and not s.stop.is_set() and not s.running
    assert "(stopped)" in last["val"]["epoch"].iloc[-1]
    assert ui_train.stop_training(s) == "No training run to stop."


def test_stop_while_queued_cancels_the_run(ctx):
    s = Session()
    ui_train.prepare_run(s)
    with pytest.raises(UIError, match="already has a training run"):
        ui_train.prepare_run(s)  # a second Start while the first waits
    ui_train.stop_training(s)
    updates = run(ctx, s)
    assert "Cancelled" in updates[-1]["status"] and s.model is None and not s.stop.is_set()


def test_time_limit_stops_a_run_cleanly(ctx):
    s = Session()
    limit, ctx.max_train_seconds = ctx.max_train_seconds, 0
    try:
        last = run(ctx, s, n=128)[-1]
    finally:
        ctx.max_train_seconds = limit
    assert "Time limit" in last["status"] and s.run["steps"] < 16


def test_two_sessions_train_their_own_models(ctx):
    a, b = Session(), Session()
    run(ctx, a, lr_heads=1e-2)
    run(ctx, b, lr_heads=5e-4, n=96)
    assert a.model is not b.model and a.run["sentences"] == 64 and b.run["sentences"] == 96
    pa = ui.predict_text(ctx, "The vote was close.", SESSION_MODEL, a)["probs"]
    pb = ui.predict_text(ctx, "The vote was close.", SESSION_MODEL, b)["probs"]
    assert pa != pb


def test_a_session_cannot_train_twice_at_once(ctx):
    s = Session()
    s.running = True
    with pytest.raises(UIError, match="already training"):
        run(ctx, s)


# Saving


def test_save_validates_the_name_and_the_model_loads_back(ctx):
    s = Session()
    with pytest.raises(UIError, match="no trained model"):
        ui_train.save_session_model(ctx, s, "mine")
    run(ctx, s)
    os.symlink(ctx.checkpoint, ctx.saved_dir / "linked")
    for name, message in [
        ("", "name"),
        ("../evil", "letters, digits"),
        ("with space", "letters, digits"),
        (".hidden", "letters, digits"),
        ("x" * 65, "letters, digits"),
        ("default", "shipped model"),
        ("Default", "shipped model"),
        ("linked", "already exists"),
    ]:
        with pytest.raises(UIError, match=message):
            ui_train.save_session_model(ctx, s, name)
    assert ui_train.save_session_model(ctx, s, " heads-only_1 ") == "heads-only_1"
    assert "heads-only_1" in [v for _, v in ctx.choices(s)] and "linked" not in ctx.saved_models()
    with pytest.raises(UIError, match="already exists"):
        ui_train.save_session_model(ctx, s, "heads-only_1")
    with pytest.raises(UIError, match="already exists"):
        ui_train.save_session_model(ctx, s, "HEADS-only_1")
    loaded, name = ctx.resolve("heads-only_1", Session())
    text = ["The striker scored twice."]
    assert name == "heads-only_1" and loaded is not s.model
    assert torch.allclose(loaded.predict_proba(text)["topic"], s.model.predict_proba(text)["topic"], atol=1e-5)
    assert "a saved model" in ctx.model_info("heads-only_1", Session())


# LogME of a chosen model's layers (Experiments tab)


def test_live_logme_scores_every_layer_of_the_chosen_model(ctx):
    from mtl import ui_experiments

    status, table = ui_experiments.live_logme(ctx, "default", Session(), 128)
    assert list(table["layer output"]) == ["embeddings (0)", *[f"layer {k}" for k in range(1, 7)]]
    assert set(table.columns) == {"layer output", "topic", "sentiment"}
    # the shipped model's fine-tuned top layers carry its tasks far better than the raw token embeddings
    assert table["topic"].iloc[-1] > table["topic"].iloc[0] + 0.1
    assert "128 training sentences" in status and not ctx.default_model.training

    with pytest.raises(UIError, match="64 to 512 sentences"):
        ui_experiments.live_logme(ctx, "default", Session(), 5000)
    with pytest.raises(UIError, match="no trained model yet"):
        ui_experiments.live_logme(ctx, SESSION_MODEL, Session(), 64)
