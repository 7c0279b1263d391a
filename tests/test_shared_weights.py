"""Frozen weights held once (mtl/shared_weights.py): a model trained from another shares the frozen
weights it did not change, trains exactly as an unshared copy would, and never writes into them."""

import copy

import pytest
import torch

from mtl.checkpoint import load_checkpoint, round_weights, save_checkpoint
from mtl.config import TrainConfig
from mtl.encoder import hf_model
from mtl.freeze import apply_freeze, parse_freeze
from mtl.shared_weights import share_frozen, shared_bytes
from mtl.train import train

SPEC = "bottom:1"
FROZEN = ("embeddings.", "encoder.layer.0.", "pooler.")  # bottom:1, and the pooler (never trained)


def snapshot(model) -> dict:
    return {n: p.detach().clone() for n, p in model.state_dict().items()}


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def train_copy(reference, data, share: bool):
    model = copy.deepcopy(reference)
    apply_freeze(model, parse_freeze(SPEC, model))
    if share:
        share_frozen(model, reference)
    torch.manual_seed(0)
    list(train(model, data, data, TrainConfig(epochs=2, batch_size=8, lr_encoder=1e-3, freeze=SPEC, seed=0)))
    return model


def test_a_trained_copy_shares_its_frozen_weights_and_trains_as_an_unshared_one(tiny_model, toy_data):
    before = snapshot(tiny_model)
    shared, alone = train_copy(tiny_model, toy_data, True), train_copy(tiny_model, toy_data, False)
    assert identical(snapshot(tiny_model), before)  # the reference is untouched, bit for bit
    assert identical(snapshot(shared), snapshot(alone))  # sharing changes no result
    theirs = {p.data_ptr() for p in hf_model(tiny_model.encoder).parameters()}
    for name, p in hf_model(shared.encoder).named_parameters():
        frozen = name.startswith(FROZEN)
        assert (p.data_ptr() in theirs) == frozen, name  # frozen: shared; trained: its own
    frozen_bytes = sum(
        p.numel() * p.element_size() for n, p in hf_model(shared.encoder).named_parameters() if n.startswith(FROZEN)
    )
    assert shared_bytes(shared, tiny_model) == frozen_bytes > 0
    texts = ["the striker scored", "shares fell"]
    assert shared.predict_proba(texts)["topic"].equal(alone.predict_proba(texts)["topic"])


def test_only_frozen_weights_equal_to_the_reference_are_shared(tiny_model):
    model = copy.deepcopy(tiny_model)
    apply_freeze(model, parse_freeze("encoder", model))
    word = "embeddings.word_embeddings.weight"
    with torch.no_grad():
        hf_model(model.encoder).get_parameter(word)[0, 0] += 1.0  # frozen but different: kept apart
    model.trained_params = {"encoder.layer.1.output.dense.weight"}  # a checkpoint's trained weight: kept apart
    share_frozen(model, tiny_model)
    mine, theirs = hf_model(model.encoder), hf_model(tiny_model.encoder)
    for name, p in mine.named_parameters():
        apart = name in (word, "encoder.layer.1.output.dense.weight")
        assert (p.data_ptr() == theirs.get_parameter(name).data_ptr()) != apart, name
        assert not p.requires_grad


def test_saving_and_rounding_a_sharing_model_leave_the_reference_alone(tiny_model, toy_data, tmp_path):
    before = snapshot(tiny_model)
    model = train_copy(tiny_model, toy_data, True)
    round_weights(model, "float16")
    save_checkpoint(model, tmp_path / "ckpt", dtype="float16")
    loaded = load_checkpoint(tmp_path / "ckpt", "cpu")
    assert identical(snapshot(tiny_model), before)
    texts = ["the striker scored", "shares fell"]
    for task, probs in model.predict_proba(texts).items():
        assert torch.equal(probs, loaded.predict_proba(texts)[task])


@pytest.mark.parametrize("what", ["dtype", "already shared"])
def test_weights_in_another_dtype_are_not_shared(tiny_model, what):
    model = copy.deepcopy(tiny_model)
    apply_freeze(model, parse_freeze("encoder", model))
    if what == "dtype":
        model.encoder.to(torch.float64)
        assert share_frozen(model, tiny_model) == 0
    else:
        assert share_frozen(model, tiny_model) > 0 and share_frozen(model, tiny_model) == 0  # twice: once
