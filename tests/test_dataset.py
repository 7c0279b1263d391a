"""The shipped dataset's guarantees: balance, no leakage across splits, no template traces and no
label shortcuts. A later edit of data/ that breaks one of these fails CI."""

import csv
from collections import Counter

import pytest
from conftest import DATA, assert_no_leakage

from mtl import datacheck as dc
from mtl.data import load_labelled

TOPICS = {"World", "Politics", "Business", "Sports", "Science & Technology", "Entertainment", "Health", "Travel"}
SENTIMENTS = {"positive", "negative", "neutral"}
KINDS = {"contrast", "sarcasm", "negation", "boundary", "neutral_emotional"}


@pytest.fixture(scope="module")
def splits():
    return {name: load_labelled(DATA / f"{name}.csv") for name in ("train", "val", "test")}


@pytest.fixture(scope="module")
def everything(splits):
    texts = [t for d in splits.values() for t in d.texts]
    labels = {task: [v for d in splits.values() for v in d.labels[task]] for task in ("topic", "sentiment")}
    return texts, labels


def test_labels_and_size(splits, everything):
    texts, labels = everything
    assert len(texts) >= 2000
    assert set(labels["topic"]) == TOPICS and set(labels["sentiment"]) == SENTIMENTS
    for d in splits.values():
        assert list(d.tasks) == ["topic", "sentiment"]
        assert all(v is not None for col in d.labels.values() for v in col)


def test_every_cell_has_at_least_60_and_splits_are_stratified(splits, everything):
    _, labels = everything
    cells = dc.cell_counts(labels)
    assert len(cells) == 24 and min(cells.values()) >= 60
    total = sum(len(d) for d in splits.values())
    for name, share in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        assert abs(len(splits[name]) / total - share) < 0.02, name
        per_cell = dc.cell_counts(splits[name].labels)
        for cell, n in cells.items():
            assert abs(per_cell[cell] / n - share) < 0.06, (name, cell)


def test_lengths_vary_from_short_to_long(everything):
    lengths = [len(t.split()) for t in everything[0]]
    assert min(lengths) == 4 and max(lengths) >= 35 and max(lengths) <= 40
    assert sum(n <= 8 for n in lengths) > 0.05 * len(lengths)
    assert sum(n >= 25 for n in lengths) > 0.05 * len(lengths)


def test_no_duplicates_or_near_duplicates_across_splits(splits):
    assert_no_leakage(splits)


def test_no_template_traces(everything):
    texts = everything[0]
    assert dc.similar_pairs(texts) == []
    assert dc.repeated_phrases(texts) == []
    assert dc.repeated_openings(texts) == []
    assert dc.skeleton_pairs(texts) == []


@pytest.mark.parametrize("task", ["topic", "sentiment"])
def test_no_label_shortcuts(everything, task):
    texts, labels = everything
    assert dc.label_shortcuts(texts, labels[task]) == []


def test_hard_cases_of_every_kind_in_every_split(splits):
    with open(DATA / "hard_cases.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    by_split = {name: Counter() for name in splits}
    for r in rows:
        assert r["text"] in splits[r["split"]].texts, r["text"]
        by_split[r["split"]][r["kind"]] += 1
    for name, kinds in by_split.items():
        assert set(kinds) == KINDS, name
        assert min(kinds.values()) >= 5, (name, kinds)


# The checks themselves must be able to fire.
def test_checks_detect_planted_problems():
    assert dc.similar_pairs(["The match ended 2-1 in Lyon."], ["the match ended 2-1 in lyon!"])
    assert dc.skeleton_pairs(["Shares of Acme rose 5% on Monday morning", "Shares of Bolt rose 7% on Monday morning"])
    assert dc.repeated_openings([f"In other news item {i}" for i in range(10)])
    assert dc.repeated_phrases([f"Stock market today {i}" for i in range(20)])
    texts = [f"sentence number {i} will happen" if i % 2 else f"sentence number {i}" for i in range(60)]
    labels = ["neutral" if i % 2 else ("positive" if i % 4 == 0 else "negative") for i in range(60)]
    assert ("will", "neutral") in [(f, lab) for f, lab, *_ in dc.label_shortcuts(texts, labels)]
