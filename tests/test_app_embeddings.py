"""The Embeddings tab's functions (mtl_app/embeddings.py), called directly: no server, no browser."""

import numpy as np
import pytest
from app_helpers import make_context

from mtl_app import embeddings
from mtl_app.context import MAX_INPUT_CHARS, MAX_SENTENCE_CHARS, Session, UIError


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("saved"), update_seconds=0)  # every step an update


def test_parse_sentences_limits():
    with pytest.raises(UIError, match="at least two"):
        embeddings.parse_sentences("only one\n\n   ")
    lines, notes = embeddings.parse_sentences("\n".join(f"sentence {i}" for i in range(300)))
    assert len(lines) == embeddings.MAX_EMBED_SENTENCES and "300 sentences" in notes[0]
    lines, notes = embeddings.parse_sentences("short\n" + "x" * 5000)
    assert len(lines[1]) == MAX_SENTENCE_CHARS and notes
    with pytest.raises(UIError, match="limit"):
        embeddings.parse_sentences("a\n" * (MAX_INPUT_CHARS // 2 + 1))


def test_embed_sentences(ctx):
    text = "The team won the cup final.\nThe side lifted the trophy after the final.\nInflation rose to 4%.\n<script>x"
    r = embeddings.embed_sentences(ctx, text, "mean", "default", Session())
    sim = r["similarity"]
    assert sim.shape == (4, 4) and np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1, atol=1e-5)
    assert r["pair"] == (0, 1) and r["dim"] == 384 and "384 numbers" in r["summary"]
    scatter = r["scatter"]
    assert scatter["PC1"].notna().sum() == 4 and {"PC1", "PC2", "sentence", "predicted topic"} <= set(scatter.columns)
    assert set(scatter["predicted topic"]) == set(ctx.tasks["topic"])  # every label, for a stable legend
    assert "&lt;script&gt;x" in r["heatmap"] and "<script>" not in r["heatmap"]
    assert 0 < r["variance"].sum() <= 1 + 1e-9
    cls = embeddings.embed_sentences(ctx, text, "cls", "default", Session())
    assert not np.allclose(cls["similarity"], sim) and "trained with mean pooling" in cls["summary"]
    assert ctx.default_model.encoder[1].pooling_mode == "mean"  # the shared model is left as it was
    with pytest.raises(UIError, match="Pooling"):
        embeddings.embed_sentences(ctx, text, "median", "default", Session())


def test_pca_pairs_and_colours():
    emb = np.array([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1]])
    coords, ratio = embeddings.pca_2d(emb)
    assert coords.shape == (3, 2) and ratio[0] >= ratio[1] >= 0
    assert embeddings.pca_2d(emb[:2])[0].shape == (2, 2)
    assert embeddings.extreme_pairs(embeddings.cosine_matrix(emb)) == ((0, 1), (0, 2))
    assert embeddings.cell_color(1.0)[1] == "#ffffff" and embeddings.cell_color(-0.5)[0].startswith("rgb")
    assert embeddings.two_decimals(-0.001) == "0.00" and embeddings.two_decimals(0.456) == "0.46"


@pytest.mark.parametrize(
    "text, pooling, choice, message",
    [
        (["one", "two"], "mean", "default", "The sentences must be text, not a list"),
        ({"a": 1}, "mean", "default", "The sentences must be text, not an object"),
        ("one\ntwo", ["mean"], "default", "The pooling must be text, not a list"),
        ("one\ntwo", "mean", 3, "The model choice must be text, not a number"),
        ("one\ntwo", "mean", {"path": "x"}, "The model choice must be text, not an object"),
    ],
)
def test_embed_refuses_inputs_of_the_wrong_type(ctx, text, pooling, choice, message):
    with pytest.raises(UIError, match=message):
        embeddings.embed_sentences(ctx, text, pooling, choice, Session())
