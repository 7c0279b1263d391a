"""Sweeps and transferability scoring, on the tiny model (fast)."""

import json

import numpy as np
import pytest
from conftest import layer_runs

from mtl import sweep
from mtl.errors import ConfigError
from mtl.results import write_results


@pytest.fixture
def tiny_sweeps(monkeypatch, tiny_bert):
    """The real sweep machinery, with every model built on the tiny BERT."""
    from mtl import model as model_mod

    real = model_mod.new_model

    def tiny_new_model(tasks, config=None, device="auto", seed=None):  # noqa: ARG001
        from mtl.config import ModelConfig

        return real(tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=seed)

    monkeypatch.setattr(sweep, "new_model", tiny_new_model)


def test_sweep_runs_every_config_and_summarises(tiny_sweeps, toy_data, tmp_path):
    events = list(sweep.run_sweeps(["freeze", "tasks"], 2, 1, toy_data, toy_data, toy_data))
    kind, payload = events[-1]
    assert kind == "done"
    names = [row["name"] for row in payload["summary"]]
    assert "entire network frozen" in names and "topic only" in names and "nothing frozen" in names
    by_name = {(r["sweep"], r["name"]): r for r in payload["summary"]}
    frozen = by_name["freeze", "entire network frozen"]
    assert frozen["trainable_params"] == 0 and frozen["seeds"] == [0, 1]
    assert set(by_name["tasks", "topic only"]["test"]) == {"topic"}
    probe = by_name["tasks", "linear probe (logistic regression on frozen embeddings)"]
    assert probe["test"]["topic"]["accuracy"]["std"] == 0.0  # deterministic
    assert "encoder_probe" in by_name["freeze", "topic head frozen"]
    for row in payload["summary"]:
        for m in row["test"].values():
            assert 0 <= m["accuracy"]["mean"] <= 1 and m["accuracy"]["std"] >= 0
    # "nothing frozen" appears in two sweeps but trains once per seed
    assert by_name["freeze", "nothing frozen"]["test"] == by_name["tasks", "nothing frozen"]["test"]
    json_path, md_path = write_results(tmp_path / "r.json", {"command": "test", **payload})
    assert json.loads(json_path.read_text())["summary"]
    assert "| entire network frozen |" in md_path.read_text()


def test_unknown_sweep_and_bad_seeds(toy_data):
    with pytest.raises(ConfigError, match="unknown sweep"):
        list(sweep.run_sweeps(["colours"], 1, 1, toy_data, toy_data, toy_data))
    with pytest.raises(ConfigError, match="seeds"):
        list(sweep.run_sweeps(["freeze"], 0, 1, toy_data, toy_data, toy_data))


def test_layer_embeddings_and_spearman(tiny_model, toy_data):
    from mtl.transfer import layer_embeddings, spearman

    layers = layer_embeddings(tiny_model.encoder, toy_data.texts[:7])
    assert len(layers) == 3 and all(x.shape == (7, 32) for x in layers)
    from mtl.encoder import encode

    np.testing.assert_allclose(layers[-1], encode(tiny_model.encoder, toy_data.texts[:7]), atol=1e-5)
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_random_encoder_differs_from_pretrained(tiny_bert):
    import torch

    from mtl.encoder import build_encoder, hf_model
    from mtl.transfer import random_encoder

    a, b = hf_model(build_encoder(tiny_bert)), hf_model(random_encoder(tiny_bert))
    assert not torch.equal(
        a.encoder.layer[0].attention.self.query.weight, b.encoder.layer[0].attention.self.query.weight
    )


def test_an_interrupted_sweep_resumes_without_rerunning(tiny_sweeps, toy_data, monkeypatch):
    first = [p for k, p in sweep.run_sweeps(["freeze"], 1, 1, toy_data, toy_data, toy_data) if k == "run"][:2]
    calls = []
    real = sweep.run_one
    monkeypatch.setattr(sweep, "run_one", lambda *a, **k: calls.append(a[0]["name"]) or real(*a, **k))
    events = list(sweep.run_sweeps(["freeze"], 1, 1, toy_data, toy_data, toy_data, previous=first))
    assert [c for c in calls] == [r["name"] for r in sweep.sweep_configs()["freeze"][2:]]
    assert events[0][1]["test"] == first[0]["test"]


def test_layer_agreement_pairs_hidden_state_k_with_bottom_k():
    from mtl.results import summarise
    from mtl.transfer import layer_agreement

    runs = layer_runs({-1: 0.99, 0: 0.9, 1: 0.8, 2: 0.85, 3: 0.5})
    scores = {0: {"topic": -1.0}, 1: {"topic": -0.5}, 2: {"topic": 0.0}, 3: {"topic": 0.5}}
    a = layer_agreement(scores, summarise(runs))["topic"]
    assert [p["K"] for p in a["pairs"]] == [0, 1, 2, 3]  # K = -1 (embeddings trained too) has no hidden state
    assert a["spearman"] == pytest.approx(-0.8)  # ranks 1,2,3,4 against 4,2,3,1


def test_epochs_factor_trains_longer(tiny_sweeps, toy_data):
    one = sweep.run_one({"freeze": "backbone"}, 0, 1, toy_data, toy_data, toy_data)
    three = sweep.run_one({"freeze": "backbone", "epochs_factor": 3}, 0, 1, toy_data, toy_data, toy_data)
    assert three["steps"] == 3 * one["steps"] > 0
