import pytest
import torch

from mtl.config import TrainConfig
from mtl.errors import ConfigError
from mtl.freeze import component_params, parameter_counts, parse_freeze
from mtl.train import train


def run(model, data, **kw):
    return list(train(model, data, data, TrainConfig(epochs=1, batch_size=8, lr_encoder=1e-3, **kw)))


def state(model):
    return {c: [p.detach().clone() for _, p in ps] for c, ps in component_params(model).items()}


def changed(before, after, component):
    return any(not torch.equal(a, b) for a, b in zip(before[component], after[component]))


def test_component_names(tiny_model):
    assert list(component_params(tiny_model)) == [
        "embeddings",
        "layer.0",
        "layer.1",
        "pooler",
        "head.topic",
        "head.sentiment",
    ]


def test_presets(tiny_model):
    assert parse_freeze("none", tiny_model) == set()
    assert parse_freeze("all", tiny_model) == set(component_params(tiny_model)) - {"pooler"}
    assert parse_freeze("backbone", tiny_model) == {"embeddings", "layer.0", "layer.1"}
    assert parse_freeze("bottom:1", tiny_model) == {"embeddings", "layer.0"}
    assert parse_freeze("bottom:0", tiny_model) == {"embeddings"}
    assert parse_freeze("head.topic", tiny_model) == {"head.topic"}
    assert parse_freeze("embeddings, layer.1", tiny_model) == {"embeddings", "layer.1"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("bottom:3", r"0 <= K <= 2"),
        ("bottom:x", "bottom:K"),
        ("head.colour", "unknown freeze component"),
        ("layer.7", "components are embeddings, layer.0"),
    ],
)
def test_bad_freeze_specs(tiny_model, spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_freeze(spec, tiny_model)


@pytest.mark.parametrize("spec", ["backbone", "bottom:1", "head.topic", "head.sentiment", "layer.1,head.topic"])
def test_frozen_weights_are_bit_identical_and_the_rest_train(tiny_model, toy_data, spec):
    frozen = parse_freeze(spec, tiny_model)
    before = state(tiny_model)
    events = run(tiny_model, toy_data, freeze=spec)
    assert events[-1]["type"] == "done" and events[-1]["steps"] > 0
    assert all(p.grad is None for p in tiny_model.parameters())  # no gradients kept after the run
    after = state(tiny_model)
    for component in before:
        if component == "pooler":  # unused by sentence-transformers pooling: always frozen
            assert not changed(before, after, component)
            continue
        assert changed(before, after, component) == (component not in frozen), component


def test_all_frozen_refuses_to_train(tiny_model, toy_data):
    before = state(tiny_model)
    events = run(tiny_model, toy_data, freeze="all")
    assert [e["type"] for e in events] == ["start", "eval", "done"]
    assert events[-1]["eval_only"] and "nothing to train" in events[-1]["message"]
    assert all(not changed(before, state(tiny_model), c) for c in before)


def test_parameter_counts(tiny_model):
    from mtl.freeze import apply_freeze

    apply_freeze(tiny_model, parse_freeze("backbone", tiny_model))
    counts = parameter_counts(tiny_model)
    heads = counts["head.topic"]["total"] + counts["head.sentiment"]["total"]
    assert counts["head.topic"]["total"] == 32 * 3 + 3
    assert counts["total"]["trainable"] == heads
    assert counts["total"]["total"] == sum(p.numel() for p in tiny_model.parameters())


def test_presets_spell_out_bottom_k_and_heads_for_the_model(tiny_model):
    from mtl.freeze import PRESETS, presets

    assert list(PRESETS) == ["none", "backbone", "bottom:K", "head.<task>", "all"]
    specs = presets(tiny_model)
    assert list(specs) == [
        "none",
        "backbone",
        "bottom:0",
        "bottom:1",
        "bottom:2",
        "head.topic",
        "head.sentiment",
        "all",
    ]
    assert specs["bottom:1"] == "embeddings + the bottom 1 layers" and specs["head.topic"] == "freeze the topic head"
    for spec in specs:  # every spelled-out preset is one parse_freeze accepts
        parse_freeze(spec, tiny_model)


def test_preset_for_frozen_components(tiny_model):
    from mtl.freeze import freezable_components, frozen_components, preset_for

    assert freezable_components(tiny_model) == ["embeddings", "layer.0", "layer.1", "head.topic", "head.sentiment"]
    assert frozen_components("bottom:1", tiny_model) == ["embeddings", "layer.0"]
    assert frozen_components("layer.1, embeddings", tiny_model) == ["embeddings", "layer.1"]
    assert preset_for([], tiny_model) == "none"
    assert preset_for(["layer.0", "embeddings"], tiny_model) == "bottom:1"
    assert preset_for(["embeddings", "layer.0", "layer.1"], tiny_model) == "backbone"  # = bottom:2 on BERT
    assert preset_for(["head.sentiment"], tiny_model) == "head.sentiment"
    assert preset_for(freezable_components(tiny_model), tiny_model) == "all"
    assert preset_for(["layer.1"], tiny_model) is None
