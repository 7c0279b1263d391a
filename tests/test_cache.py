"""The frozen-part cache must not change what training computes, only how fast."""

import numpy as np
import pytest
import torch

from mtl.cache import FeatureCache, build_caches, frozen_prefix
from mtl.config import ModelConfig, TrainConfig
from mtl.encoder import hf_model
from mtl.freeze import parse_freeze
from mtl.model import new_model
from mtl.train import train


def run(tiny_bert, data, freeze, cache, **kw):
    model = new_model(data.tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=0)
    config = TrainConfig(epochs=2, batch_size=8, freeze=freeze, cache=cache, lr_encoder=1e-3, seed=3, **kw)
    events = list(train(model, data, data, config))
    return model, events


def curve(events):
    return [e["loss"] for e in events if e["type"] == "step"]


@pytest.mark.parametrize("freeze, mode", [("backbone", "pooled"), ("bottom:1", "prefix"), ("bottom:0", "prefix")])
def test_cached_and_uncached_training_give_the_same_losses(tiny_bert, toy_data, freeze, mode):
    m1, uncached = run(tiny_bert, toy_data, freeze, cache=False)
    m2, cached = run(tiny_bert, toy_data, freeze, cache=True)
    info = [e for e in cached if e["type"] == "cache"]
    assert info and info[0]["used"] and info[0]["mode"] == mode
    assert not [e for e in uncached if e["type"] == "cache"]
    np.testing.assert_allclose(curve(cached), curve(uncached), rtol=1e-4, atol=1e-5)
    for (n, a), (_, b) in zip(m1.named_parameters(), m2.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=n)
    e1 = [e["metrics"] for e in uncached if e["type"] == "eval"]
    e2 = [e["metrics"] for e in cached if e["type"] == "eval"]
    for a, b in zip(e1, e2):
        for t in a:
            assert a[t]["accuracy"] == b[t]["accuracy"]
            assert a[t]["loss"] == pytest.approx(b[t]["loss"], rel=1e-4)


def test_replay_puts_the_real_modules_back(tiny_bert, toy_data):
    model, _ = run(tiny_bert, toy_data, "bottom:1", cache=True)
    hf = hf_model(model.encoder)
    assert type(hf.embeddings).__name__ == "BertEmbeddings"
    assert all(type(layer).__name__ == "BertLayer" for layer in hf.encoder.layer)


def test_frozen_prefix(tiny_model):
    def k(spec):
        return frozen_prefix(tiny_model, parse_freeze(spec, tiny_model))

    assert k("none") is None and k("layer.0") is None and k("head.topic") is None
    assert k("backbone") == 2 and k("all") == 2
    assert k("bottom:1") == 1 and k("bottom:0") == 0 and k("embeddings,layer.1") == 0


def test_cache_is_bounded_and_falls_back(tiny_model, toy_data):
    frozen = parse_freeze("bottom:1", tiny_model)
    cache, _, event = build_caches(tiny_model, frozen, toy_data.texts, max_bytes=100)
    assert cache is None and not event["used"] and "over the" in event["message"]
    cache, _, event = build_caches(tiny_model, frozen, toy_data.texts)
    assert event["used"] and event["bytes"] == cache.nbytes > 0


def test_prefix_cache_holds_unpadded_hidden_states(tiny_model, toy_data):
    cache = FeatureCache(tiny_model, toy_data.texts[:5], k=1)
    lengths = [len(tiny_model.encoder.tokenizer(t)["input_ids"]) for t in toy_data.texts[:5]]
    assert [t.shape for t in cache.items] == [torch.Size([n, 32]) for n in lengths]
