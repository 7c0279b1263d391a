"""Transfer recipe options: register mixing, L2-SP, heads started as zero-shot classifiers (tiny model)."""

from collections import Counter

import numpy as np
import pytest
import torch

from mtl.config import ModelConfig, TrainConfig
from mtl.data import Dataset
from mtl.encoder import encode
from mtl.errors import ConfigError, DataError
from mtl.model import new_model
from mtl.sampling import register_rows
from mtl.train import train


def test_register_rows_temperature_evens_out_registers():
    groups = ["big"] * 90 + ["small"] * 10
    rng = np.random.default_rng(0)
    proportional = register_rows(groups, 1.0, rng)
    assert sorted(proportional.tolist()) == list(range(100))  # T=1: every row once, as without it
    even = Counter(groups[i] for i in register_rows(groups, 1000.0, rng))
    assert sum(even.values()) == 100 and abs(even["big"] - 50) <= 1 and abs(even["small"] - 50) <= 1
    small_rows = [i for i in register_rows(groups, 1000.0, rng) if groups[i] == "small"]
    assert set(small_rows) == set(range(90, 100))  # every small row at least once before any repeats a third time
    assert max(Counter(small_rows).values()) - min(Counter(small_rows).values()) <= 1


def _with_registers(data: Dataset) -> Dataset:
    return Dataset(data.texts, data.labels, data.label_sets, ["a" if i % 4 else "b" for i in range(len(data))])


def test_register_temperature_trains_on_its_draw_and_needs_registers(tiny_bert, toy_data):
    model = new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=0)
    config = TrainConfig(epochs=1, batch_size=8, register_sampling="temperature", register_temperature=50.0)
    with pytest.raises(DataError, match="register column"):
        list(train(model, toy_data, None, config))
    events = list(train(model, _with_registers(toy_data), None, config))
    assert events[-1]["type"] == "done" and events[-1]["steps"] > 0


def _encoder_distance(model, start) -> float:
    return sum(float((p.detach() - start[n]).pow(2).sum()) for n, p in model.encoder.named_parameters() if n in start)


def test_l2sp_keeps_the_encoder_near_its_start(tiny_bert, toy_data):
    distances = {}
    for l2sp in (0.0, 50.0):
        model = new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=0)
        start = {n: p.detach().clone() for n, p in model.encoder.named_parameters()}
        config = TrainConfig(epochs=3, batch_size=8, lr_encoder=1e-2, l2sp=l2sp, grad_clip=0.0, seed=1)
        list(train(model, toy_data, None, config))
        distances[l2sp] = _encoder_distance(model, start)
    assert 0 < distances[50.0] < 0.5 * distances[0.0]


def test_labels_head_start_is_the_zero_shot_classifier(tiny_bert, toy_data):
    model = new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=0)
    model.init_heads_from_labels()
    model.eval()
    texts = toy_data.texts[:12]
    probs = model.predict_proba(texts)
    sentences = torch.nn.functional.normalize(torch.as_tensor(encode(model.encoder, texts)), dim=1)
    for task, labels in model.tasks.items():
        names = torch.nn.functional.normalize(torch.as_tensor(encode(model.encoder, labels)), dim=1)
        zero_shot = (sentences @ names.T).argmax(1)
        assert torch.equal(probs[task].argmax(1), zero_shot)
        assert torch.count_nonzero(model.heads[task].net[-1].bias) == 0


def test_labels_head_start_needs_linear_heads(tiny_bert, toy_data):
    model = new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert, head_hidden=8), device="cpu", seed=0)
    with pytest.raises(ConfigError, match="linear heads"):
        list(train(model, toy_data, None, TrainConfig(epochs=1, head_init="labels")))


def test_recipe_options_are_validated():
    with pytest.raises(ConfigError, match="l2sp"):
        TrainConfig(l2sp=-1)
    with pytest.raises(ConfigError, match="register_sampling"):
        TrainConfig(register_sampling="uniform")
    with pytest.raises(ConfigError, match="head_init"):
        TrainConfig(head_init="zero")
