"""Training and saving in the app (mtl_app/train_run.py, mtl_app/train_save.py), called directly: no server."""

import os

import pytest
import torch
from app_helpers import BACKBONE, make_context

from mtl.encoder import hf_model
from mtl.errors import MTLError
from mtl.shared_weights import shared_bytes
from mtl_app import admission, freeze_controls, predict, train_run, train_save
from mtl_app.context import SESSION_MODEL, Session, UIError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"), update_seconds=0)  # every step an update


def weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def run(ctx, session, choice="default", start="pretrained", frozen=BACKBONE, epochs=1, batch=8, lr_heads=5e-3, n=64):
    return list(train_run.run_training(ctx, session, choice, start, frozen, epochs, batch, 5e-5, lr_heads, "joint", n))


def test_training_options_are_checked_against_the_demo_limits(ctx):
    config, frozen, n = train_run.make_config(ctx, ["layer.0", "embeddings"], 2, 16, 2e-5, 1e-3, "alternate", 640)
    assert config.freeze == "embeddings,layer.0" and config.epochs == 2 and n == 640
    assert train_run.make_config(ctx, [], 1, 8, 1e-5, 5e-4, "joint", 64)[0].freeze == "none"
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
            train_run.make_config(ctx, *opts.values())


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
    view = train_run.RunView(["topic", "sentiment"], 64, 48)
    assert view.plot_frame() is None  # never an empty table: the plot would fix an empty legend
    view.on({"type": "step", "step": 1, "epoch": 1, "losses": {"topic": 2.1}})
    assert view.plot_frame() is None and len(view.loss_frame()) == 1
    view.on({"type": "step", "step": 2, "epoch": 1, "losses": {"sentiment": 1.1}})
    frame = view.plot_frame()
    assert list(frame["task"]) == ["topic", "sentiment"] and str(frame["step"].dtype) == "int64"
    updates = list(
        train_run.run_training(ctx, Session(), "default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "alternate", 64)
    )
    assert all(u["plot"] is None or set(u["plot"]["task"]) == set(ctx.tasks) for u in updates)
    assert updates[-1]["plot"] is not None


def test_everything_frozen_is_explained_and_runs_no_loop(ctx):
    s = Session()
    updates = run(ctx, s, frozen=freeze_controls.components(ctx))
    last = updates[-1]
    assert "nothing to train" in last["status"] and not last["adopted"] and len(last["loss"]) == 0
    assert s.model is None and last["val"]["epoch"].tolist() == ["start (no training)"]


def test_stop_ends_a_run_and_keeps_the_model(ctx):
    s = Session()
    gen = train_run.run_training(ctx, s, "default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "joint", 256)
    for u in gen:
        if len(u["loss"]) >= 4:
            assert "Stopping" in train_run.stop_training(s)
            break
    rest = list(gen)
    last = rest[-1]
    assert "Stopped" in last["status"] and last["adopted"] and s.model is not None
    assert s.run["steps"] < 32 and s.run["stopped"] and not s.stop.is_set() and not s.running
    assert "(stopped)" in last["val"]["epoch"].iloc[-1]
    assert train_run.stop_training(s) == "No training run to stop."


def test_stop_while_queued_cancels_the_run(ctx):
    s, other = Session(), Session()
    with ctx.admit_training(other):  # another session's run holds the slot
        ctx.reserve_training(s)  # Start pressed: its place, taken before the run is queued
        with pytest.raises(MTLError, match="already has a training run"):
            ctx.reserve_training(s)  # a second Start while the first waits
        updates = train_run.run_training(ctx, s, "default", "pretrained", BACKBONE, 1, 8, 5e-5, 5e-3, "joint", 64)
        assert "Waiting for a training slot: 1 run ahead" in next(updates)["status"] and s.pending
        assert "Stopping" in train_run.stop_training(s)
        last = list(updates)[-1]
    assert "Cancelled" in last["status"] and s.model is None and not s.stop.is_set()
    assert not ctx.training_gate.tickets()


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
    pa = predict.predict_text(ctx, "The vote was close.", SESSION_MODEL, a)["probs"]
    pb = predict.predict_text(ctx, "The vote was close.", SESSION_MODEL, b)["probs"]
    assert pa != pb


def test_a_session_cannot_train_twice_at_once(ctx):
    s = Session()
    s.running = True
    with pytest.raises(UIError, match="already training"):
        run(ctx, s)


def test_save_validates_the_name_and_the_model_loads_back(ctx):
    s = Session()
    with pytest.raises(UIError, match="no trained model"):
        train_save.save_session_model(ctx, s, "mine")
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
            train_save.save_session_model(ctx, s, name)
    assert train_save.save_session_model(ctx, s, " heads-only_1 ") == "heads-only_1"
    assert "heads-only_1" in [v for _, v in ctx.choices(s)] and "linked" not in ctx.saved_models()
    with pytest.raises(UIError, match="already exists"):
        train_save.save_session_model(ctx, s, "heads-only_1")
    with pytest.raises(UIError, match="already exists"):
        train_save.save_session_model(ctx, s, "HEADS-only_1")
    loaded, name = ctx.resolve("heads-only_1", Session())
    text = ["The striker scored twice."]
    assert name == "heads-only_1" and loaded is not s.model
    assert torch.allclose(loaded.predict_proba(text)["topic"], s.model.predict_proba(text)["topic"], atol=1e-5)
    assert "a saved model" in ctx.model_info("heads-only_1", Session())


def test_a_saved_model_with_trained_layers_predicts_as_the_session_model(ctx):
    """The encoder weights are saved as float16 and the session's model is rounded the same way, so the
    model a visitor keeps using and the one loaded back from the folder give the same probabilities."""
    s = Session()
    run(ctx, s, frozen=BACKBONE[:5])  # layers 4 and 5 train
    assert s.model.trained_params  # encoder weights are part of the checkpoint
    assert train_save.save_session_model(ctx, s, "layers-trained") == "layers-trained"
    loaded, _ = ctx.resolve("layers-trained", Session())
    text = ["The striker scored twice.", "Shares fell sharply."]
    for task in ctx.tasks:
        assert torch.allclose(loaded.predict_proba(text)[task], s.model.predict_proba(text)[task], atol=1e-5)


def test_session_models_hold_only_what_they_train(ctx):
    """Frozen weights equal to a held model's are that model's tensors (mtl/shared_weights.py)."""
    before = weights(ctx.default_model)
    first, second = Session(), Session()
    run(ctx, first, frozen=BACKBONE[:5])  # bottom:4 from the pretrained encoder: layers 4 and 5 train
    params = dict(hf_model(first.model.encoder).named_parameters())

    def size(*starts):
        return sum(p.numel() * p.element_size() for n, p in params.items() if not starts or n.startswith(starts))

    # the shipped model (bottom:0) trained every layer: the embeddings (and the unused pooler) are its own
    assert ctx.default_model.checkpoint_meta["train"]["freeze"] == "bottom:0"
    assert shared_bytes(first.model, ctx.default_model) == size("embeddings.", "pooler.")
    # a second session's model also shares layers 0-3 (pretrained, frozen) with the first: it holds 4 and 5
    run(ctx, second, frozen=BACKBONE[:5])
    mine = dict(hf_model(second.model.encoder).named_parameters())
    assert shared_bytes(second.model, ctx.default_model, first.model) == size() - size(
        "encoder.layer.4.", "encoder.layer.5."
    )
    assert all(mine[n].data_ptr() != params[n].data_ptr() for n in mine if n.startswith("encoder.layer.4."))
    assert same_weights(before, weights(ctx.default_model))
    text = ["The striker scored twice.", "Shares fell sharply."]
    assert ctx.resolve(SESSION_MODEL, second)[0].predict_proba(text)["topic"].shape == (2, len(ctx.tasks["topic"]))


def test_pace_stops_at_the_time_limit_after_one_step_and_yields_to_predictions(ctx):
    import threading
    import time

    stop = threading.Event()
    pace = admission.Pace(ctx, stop, seconds=0)
    assert not pace.is_set()  # the first look never stops: a run always does one step
    assert pace.is_set() and pace.timed_out
    pace = admission.Pace(ctx, stop, seconds=60)
    pace.is_set()
    time.sleep(0.1)  # a step's work
    ctx.note_request()  # a visitor is predicting
    t0 = time.monotonic()
    assert not pace.is_set()
    assert time.monotonic() - t0 >= admission.YIELD_TO_REQUESTS * 0.1 * 0.9  # paused for them
    stop.set()
    assert pace.is_set() and not pace.timed_out


def test_a_session_saves_up_to_its_quota_and_deletes_only_its_own(ctx, tmp_path):
    import dataclasses

    small = ctx.with_limits(dataclasses.replace(ctx.limits, session_saved_models=2, saved_models=3))
    small.saved_dir = tmp_path  # an empty model folder: the app's cap counts what is in it
    a, b = Session(), Session()
    run(small, a)
    run(small, b)
    assert train_save.save_session_model(small, a, "quota-1") == "quota-1"
    assert train_save.save_session_model(small, a, "quota-2") == "quota-2"  # the same model: counts again
    with pytest.raises(UIError, match="already keeps 2 saved models"):
        train_save.save_session_model(small, a, "quota-3")
    assert train_save.save_session_model(small, b, "quota-b") == "quota-b"
    with pytest.raises(UIError, match="holds 3 saved models"):
        train_save.save_session_model(small, b, "quota-b2")  # the app's cap, reached by two sessions
    for name in ("quota-1", "default", "../quota-1", ""):
        with pytest.raises(UIError):
            train_save.delete_saved_model(small, b, name)
    with pytest.raises(UIError, match="must be text"):
        train_save.delete_saved_model(small, b, ["quota-b"])
    small.resolve("quota-1", a)  # loaded and cached: deleting it drops the cache entry too
    assert train_save.delete_saved_model(small, a, "quota-1") == "quota-1"
    assert "quota-1" not in small.saved_models() and a.saved == ["quota-2"]
    assert not any(p.name.startswith(".deleting-") for p in small.saved_dir.iterdir())
    with pytest.raises(UIError, match="no saved model"):
        small.resolve("quota-1", a)
    assert train_save.save_session_model(small, a, "quota-3") == "quota-3"  # its place back
    for s, name in ((a, "quota-2"), (a, "quota-3"), (b, "quota-b")):
        train_save.delete_saved_model(small, s, name)
