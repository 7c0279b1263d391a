"""The Experiments tab (mtl_app/experiments.py, mtl_app/results_view.py): the committed results as
tables, charts and Markdown, from a results file shaped like `python -m mtl sweep` writes, and what a
visitor can run (a small sweep, LogME of a chosen model's layers) within the demo's limits."""

import json

import pytest
from app_helpers import make_context

from mtl.results import summarise
from mtl_app import experiments, results_view
from mtl_app.context import PUBLIC_LIMITS, SESSION_MODEL, Session, UIError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"))


@pytest.fixture
def results(tmp_path):
    runs = []
    for seed in (0, 1):
        for k in (-1, 0, 6):
            runs.append(
                {
                    "sweep": "layers",
                    "name": f"bottom:{k}",
                    "config": {"layers_frozen": k},
                    "seed": seed,
                    "trainable_params": 1000 * (7 - k),
                    "seconds": 10.0 + seed,
                    "test": {
                        "topic": {"accuracy": 0.9 - 0.01 * k + 0.01 * seed, "macro_f1": 0.8},
                        "sentiment": {"accuracy": 0.7, "macro_f1": 0.6 - 0.01 * k},
                    },
                }
            )
    payload = {
        "command": "python -m mtl sweep",
        "seeds": 2,
        "epochs": 3,
        "machine": {"cpu": "X", "threads": 2},
        "runs": runs,
        "summary": summarise(runs),
    }
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(payload))
    return results_view.load_results(path)


def test_tables_and_charts_come_from_the_file(results):
    table = results_view.results_table(results, "layers")
    assert list(table["setting"]) == ["bottom:-1", "bottom:0", "bottom:6"]
    assert table.loc[0, "topic accuracy"] == "0.915 ± 0.007"
    bars = results_view.bars(results, "layers")
    assert len(bars) == 6 and set(bars["task"]) == {"topic", "sentiment"}
    curve = results_view.layer_curve(results)
    assert list(curve["layers frozen (K)"].unique()) == [-1, 0, 6]
    assert results_view.costs(results, "layers")["trainable params (millions)"].iloc[0] == pytest.approx(0.008)
    assert "2 seeds, 3 epochs" in results_view.provenance(results)


def test_about_summary_reads_the_file(results):
    """The About tab's layer table shows each K's mean macro-F1 from the results, in K order."""
    md = results_view.measured_markdown(results)
    assert "| task | K=0 | K=6 | nothing frozen |" in md
    assert "| sentiment | 0.600 | 0.540 | 0.610 |" in md
    assert "2 seeds, 3 epochs" in md
    assert "python -m mtl sweep" in results_view.measured_markdown(None)


def test_logme_agreement_shown_from_the_file(tmp_path):
    pairs = [{"K": 0, "logme": -0.5, "macro_f1": 0.9}, {"K": 6, "logme": 0.25, "macro_f1": 0.6}]
    path = tmp_path / "logme.json"
    path.write_text(json.dumps({"layer_curve_agreement": {"topic": {"spearman": -1.0, "pairs": pairs}}}))
    md = results_view.logme_agreement_markdown(path)
    assert "- topic: **-1.00** (LogME / macro-F1: K=0 -0.500 / 0.900, K=6 +0.250 / 0.600)" in md
    assert results_view.logme_agreement_markdown(tmp_path / "none.json") == ""


def test_missing_or_broken_results_are_explained(tmp_path):
    assert results_view.load_results(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{oops")
    assert results_view.load_results(tmp_path / "bad.json") is None
    assert "python -m mtl sweep" in results_view.results_table(None).iloc[0, 0]
    assert "python -m mtl logme" in results_view.logme_table(tmp_path / "none.json").iloc[0, 0]
    assert results_view.layer_curve(None).empty


def test_live_sweep_limits(ctx):
    with pytest.raises(UIError, match="Choose a sweep"):
        next(experiments.run_live_sweep(ctx, "colours", 64, 1))
    with pytest.raises(UIError, match="64 to 512 sentences"):
        next(experiments.run_live_sweep(ctx, "freeze", 5000, 1))
    with pytest.raises(UIError, match="Sentences must be a whole number, not text"):
        next(experiments.run_live_sweep(ctx, "freeze", "lots", 1))
    with pytest.raises(UIError, match="The sweep must be text, not a list"):
        next(experiments.run_live_sweep(ctx, ["freeze"], 64, 1))


def test_live_sweep_obeys_the_public_caps(ctx):
    public = ctx.with_limits(PUBLIC_LIMITS)
    with pytest.raises(UIError, match=f"1 to {min(experiments.LIVE_MAX_EPOCHS, PUBLIC_LIMITS.max_epochs)} epochs"):
        next(experiments.run_live_sweep(public, "freeze", 64, 99))


def test_live_logme_scores_every_layer_of_the_chosen_model(ctx):
    *progress, (status, table) = experiments.live_logme(ctx, "default", Session(), 128)
    assert [p[1] for p in progress] == [None, None] and "encoded 128 of 128" in progress[-1][0]
    assert list(table["layer output"]) == ["embeddings (0)", *[f"layer {k}" for k in range(1, 7)]]
    assert set(table.columns) == {"layer output", "topic", "sentiment"}
    # the shipped model's fine-tuned top layers carry its tasks far better than the raw token embeddings
    assert table["topic"].iloc[-1] > table["topic"].iloc[0] + 0.1
    assert "128 training sentences" in status and not ctx.default_model.training

    with pytest.raises(UIError, match="64 to 512 sentences"):
        next(experiments.live_logme(ctx, "default", Session(), 5000))
    with pytest.raises(UIError, match="no trained model yet"):
        next(experiments.live_logme(ctx, SESSION_MODEL, Session(), 64))


def test_live_logme_lets_predictions_use_the_model_between_chunks(ctx, monkeypatch):
    """LogME encodes LOGME_CHUNK sentences at a time under the model's lock and pauses while visitors
    predict: predictions that need the same model get it between chunks, long before LogME ends."""
    import threading
    import time

    monkeypatch.setattr(experiments, "LOGME_CHUNK", 32)
    updates = []
    worker = threading.Thread(target=lambda: updates.extend(experiments.live_logme(ctx, "default", Session(), 128)))
    worker.start()
    served = []
    while worker.is_alive():
        ctx.note_request()  # what a prediction does, then it takes the model
        with ctx.model_lock(ctx.default_model):
            served.append(len(updates))  # LogME's progress when this prediction ran
        time.sleep(0.02)
    chunks = 128 // experiments.LOGME_CHUNK
    assert len(updates) == chunks + 1 and updates[-1][1] is not None
    assert len({n for n in served if n < chunks}) >= chunks // 2  # served between chunks, all along
