"""Shared fixtures: a tiny random BERT built locally (fast unit tests) and the real packaged
all-MiniLM-L6-v2 (integration tests, loaded once per session)."""

import os
import string

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import csv  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

README_ROWS = {  # the rows of the README's table of the shipped model's test metrics
    "social posts": "social",
    "headlines": "headlines",
    "reviews": "reviews",
    "financial statements": "financial",
    "forum and chat": "forum",
    "news reports": "newsbody",
}

DATA = REPO / "data"

WORDS = """the a an is was of to and in on for with at by from it this that not no good bad great
awful happy sad market stock price shares bank team match goal win lose game player election vote
party minister law film movie music song show hotel flight trip beach doctor health hospital virus
science phone app data space robot world war peace news today very really love hate""".split()


def make_tiny_bert(directory: Path, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 BERT with a WordPiece tokenizer made from a small local vocabulary."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars] + WORDS
    (directory / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(directory / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


def write_csv(path: Path, rows, header=("text", "topic", "sentiment")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


TOY = [
    ("the team won the match with a great goal", "sports", "positive"),
    ("the player was awful and the team lost the game", "sports", "negative"),
    ("the match is on today at the stadium", "sports", "neutral"),
    ("stock market shares hit a great price", "business", "positive"),
    ("the bank stock price crashed, awful news", "business", "negative"),
    ("the bank reported shares at a price of 10", "business", "neutral"),
    ("i love this film, the music is great", "film", "positive"),
    ("the movie was bad and the song awful", "film", "negative"),
    ("the film show starts today", "film", "neutral"),
]


@pytest.fixture
def toy_csv(tmp_path) -> Path:
    """A small labelled file: 36 rows, 3 topics x 3 sentiments."""
    rows = [(f"{t} {'very ' * (i % 3)}".strip(), top, sen) for i in range(4) for t, top, sen in TOY]
    return write_csv(tmp_path / "toy.csv", rows)


@pytest.fixture
def toy_data(toy_csv):
    from mtl.data import load_labelled

    return load_labelled(toy_csv)


@pytest.fixture
def tiny_model(tiny_bert, toy_data):
    from mtl.config import ModelConfig
    from mtl.model import new_model

    return new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=0)


@pytest.fixture(scope="session")
def real_encoder():
    from mtl.encoder import build_encoder

    return build_encoder("default")


@pytest.fixture(scope="session")
def shipped_splits():
    from mtl.data import load_labelled

    train = load_labelled(DATA / "train.csv")
    return (
        train,
        load_labelled(DATA / "val.csv", label_sets=train.tasks),
        load_labelled(DATA / "test.csv", label_sets=train.tasks),
    )


def layer_runs(f1_by_k, tasks=("topic",)) -> list[dict]:
    """Sweep records of a layer freezing curve, one seed: {K: macro-F1} (K = -1: nothing frozen)."""
    return [
        {
            "sweep": "layers",
            "name": f"bottom:{k}",
            "config": {"layers_frozen": k},
            "seed": 0,
            "trainable_params": 1,
            "seconds": 1.0,
            "test": {t: {"accuracy": 0.5, "macro_f1": f1} for t in tasks},
        }
        for k, f1 in f1_by_k.items()
    ]


def assert_no_leakage(splits: dict) -> None:
    """No sentence of one split equal (after normalising) or near-equal to one of another split."""
    from mtl import datacheck as dc

    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            exact = {dc.normalize(t) for t in splits[a].texts} & {dc.normalize(t) for t in splits[b].texts}
            assert not exact, (a, b, sorted(exact)[:5])
            assert dc.similar_pairs(splits[a].texts, splits[b].texts) == [], (a, b)
