"""Batches for a forward pass (mtl/batches.py) and the prediction paths built on them: order,
one tokenization per sentence, results back in the caller's order, tokenizing ahead in a thread,
bf16 weights for a model that only predicts."""

import numpy as np
import pytest
import torch

from mtl import batches as batches_mod
from mtl.batches import batches
from mtl.encoder import encode
from mtl.errors import MTLError

TEXTS = ["a", "the striker scored twice", "shares fell", "", "a much longer sentence about the budget vote", "ok"]


@pytest.mark.parametrize("prefetch", [False, True])
@pytest.mark.parametrize("chunk", [4, 4096])
def test_every_sentence_once_longest_first_tokenized_once(tiny_model, monkeypatch, prefetch, chunk):
    calls = []
    preprocess = tiny_model.encoder.preprocess
    monkeypatch.setattr(tiny_model.encoder, "preprocess", lambda texts: calls.append(list(texts)) or preprocess(texts))
    monkeypatch.setattr(batches_mod, "CHUNK", chunk)
    out = list(batches(tiny_model.encoder, TEXTS, 2, "cpu", prefetch=prefetch))
    assert sorted(np.concatenate([i for i, _ in out]).tolist()) == list(range(len(TEXTS)))
    assert sum(len(c) for c in calls) == len(TEXTS)  # each sentence tokenized exactly once
    assert len(calls) == -(-len(TEXTS) // chunk)  # one tokenizer call per chunk
    for i, features in out:  # each batch as if tokenized on its own: padded to its own longest only
        expected = preprocess([TEXTS[k] for k in i])
        assert all(torch.equal(features[k], v) for k, v in expected.items() if isinstance(v, torch.Tensor))
    if chunk > len(TEXTS):  # one chunk: longest first over all sentences
        lengths = [int(f["attention_mask"].sum(1).max()) for _, f in out]
        assert lengths == sorted(lengths, reverse=True)


def test_preparing_ahead_raises_the_error_in_order_and_stops(tiny_model, monkeypatch):
    preprocess = tiny_model.encoder.preprocess

    def failing(texts):
        if "ok" in texts:
            raise MTLError("cannot tokenize")
        return preprocess(texts)

    monkeypatch.setattr(tiny_model.encoder, "preprocess", failing)
    monkeypatch.setattr(batches_mod, "CHUNK", 2)
    monkeypatch.setattr(batches_mod, "PREFETCH", 1)
    seen = []
    with pytest.raises(MTLError, match="cannot tokenize"):
        for idx, _ in batches(tiny_model.encoder, TEXTS, 2, "cpu", prefetch=True):
            seen.append(sorted(idx.tolist()))
    assert seen == [[0, 1], [2, 3]]  # the chunks before the one with "ok", then its error


def test_predictions_come_back_in_the_callers_order(tiny_model):
    together = tiny_model.predict_proba(TEXTS, batch_size=4)
    for k, text in enumerate(TEXTS):
        alone = tiny_model.predict_proba([text])
        for task in together:
            assert torch.allclose(together[task][k], alone[task][0], atol=1e-5)
    assert {t: p.shape for t, p in tiny_model.predict_proba([]).items()} == {
        t: (0, len(labels)) for t, labels in tiny_model.tasks.items()
    }
    emb = encode(tiny_model.encoder, TEXTS, batch_size=4)
    assert np.allclose(emb[1], encode(tiny_model.encoder, [TEXTS[1]])[0], atol=1e-5)


def test_bf16_weights_predict_like_autocast_and_refuse_to_be_saved(tiny_model, tmp_path):
    from mtl.checkpoint import save_checkpoint

    tiny_model.set_precision("bf16")
    autocast = tiny_model.predict_proba(TEXTS)
    assert tiny_model.weights_dtype == torch.float32
    tiny_model.set_precision("bf16", weights=True)
    assert tiny_model.weights_dtype == torch.bfloat16
    cast = tiny_model.predict_proba(TEXTS)
    for task in autocast:
        assert cast[task].dtype == torch.float32
        assert torch.allclose(cast[task], autocast[task], atol=0.02)
        assert torch.equal(cast[task].argmax(-1), autocast[task].argmax(-1))
    with pytest.raises(MTLError, match="bfloat16 for prediction only"):
        save_checkpoint(tiny_model, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("chunk", [2, 4096])
def test_pretokenized_batches_equal_tokenizing_the_batch(tiny_model, monkeypatch, chunk):
    from mtl.batches import Tokens

    monkeypatch.setattr(batches_mod, "CHUNK", chunk)
    tokens = Tokens(tiny_model.encoder, TEXTS)
    for idx in ([4, 0, 2], [5, 1, 3, 0], [3], list(range(len(TEXTS)))[::-1]):
        got = tokens.batch(np.array(idx), "cpu")
        expected = tiny_model.encoder.preprocess([TEXTS[i] for i in idx])
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], v) for k, v in expected.items() if isinstance(v, torch.Tensor))
