"""The Experiments tab's data, from a results file shaped like `python -m mtl sweep` writes."""

import json

import pytest

from mtl import ui_experiments as ex
from mtl.results import summarise


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
    return ex.load_results(path)


def test_tables_and_charts_come_from_the_file(results):
    table = ex.results_table(results, "layers")
    assert list(table["setting"]) == ["bottom:-1", "bottom:0", "bottom:6"]
    assert table.loc[0, "topic accuracy"] == "0.915 ± 0.007"
    bars = ex.bars(results, "layers")
    assert len(bars) == 6 and set(bars["task"]) == {"topic", "sentiment"}
    curve = ex.layer_curve(results)
    assert list(curve["layers frozen (K)"].unique()) == [-1, 0, 6]
    assert ex.costs(results, "layers")["trainable params (millions)"].iloc[0] == pytest.approx(0.008)
    assert "2 seeds, 3 epochs" in ex.provenance(results)


def test_about_summary_reads_the_file(results):
    """The About tab's layer table shows each K's mean macro-F1 from the results, in K order."""
    md = ex.measured_markdown(results)
    assert "| task | K=0 | K=6 | nothing frozen |" in md
    assert "| sentiment | 0.600 | 0.540 | 0.610 |" in md
    assert "2 seeds, 3 epochs" in md
    assert "python -m mtl sweep" in ex.measured_markdown(None)


def test_logme_agreement_shown_from_the_file(tmp_path):
    pairs = [{"K": 0, "logme": -0.5, "macro_f1": 0.9}, {"K": 6, "logme": 0.25, "macro_f1": 0.6}]
    path = tmp_path / "logme.json"
    path.write_text(json.dumps({"layer_curve_agreement": {"topic": {"spearman": -1.0, "pairs": pairs}}}))
    md = ex.logme_agreement_markdown(path)
    assert "- topic: **-1.00** (LogME / macro-F1: K=0 -0.500 / 0.900, K=6 +0.250 / 0.600)" in md
    assert ex.logme_agreement_markdown(tmp_path / "none.json") == ""


def test_missing_or_broken_results_are_explained(tmp_path):
    assert ex.load_results(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{oops")
    assert ex.load_results(tmp_path / "bad.json") is None
    assert "python -m mtl sweep" in ex.results_table(None).iloc[0, 0]
    assert "python -m mtl logme" in ex.logme_table(tmp_path / "none.json").iloc[0, 0]
    assert ex.layer_curve(None).empty


def test_live_sweep_limits(tmp_path):
    from mtl.ui import UIError

    with pytest.raises(UIError, match="Choose a sweep"):
        next(ex.run_live_sweep(None, "colours", 64, 1))
    with pytest.raises(UIError, match="64 to 512 sentences"):
        next(ex.run_live_sweep(None, "freeze", 5000, 1))
    with pytest.raises(UIError, match="whole numbers"):
        next(ex.run_live_sweep(None, "freeze", "lots", 1))


def test_live_sweep_obeys_the_public_caps():
    from types import SimpleNamespace

    from mtl.ui import PUBLIC_LIMITS, UIError

    ctx = SimpleNamespace(limits=PUBLIC_LIMITS)
    with pytest.raises(UIError, match=f"1 to {min(ex.LIVE_MAX_EPOCHS, PUBLIC_LIMITS.max_epochs)} epochs"):
        next(ex.run_live_sweep(ctx, "freeze", 64, 99))
