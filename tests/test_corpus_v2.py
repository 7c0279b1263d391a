"""Corpus v2's guarantees (data/v2/): size and coverage per register, v1 kept as its own register with its
splits, no leakage across splits, no template traces or label shortcuts over v1 + v2, register-marking
words that do not beat the content, and the double labelling's agreement. A later edit that breaks one
fails CI."""

import csv
import re
from collections import Counter

import pytest
from conftest import DATA, assert_no_leakage

from mtl import datacheck as dc
from mtl.data import load_labelled

V2 = DATA / "v2"
REGISTERS = {"headlines", "social", "reviews", "financial", "forum", "newsbody"}


@pytest.fixture(scope="module")
def splits():
    return {name: load_labelled(V2 / f"{name}.csv") for name in ("train", "val", "test")}


@pytest.fixture(scope="module")
def everything(splits):
    texts = [t for d in splits.values() for t in d.texts]
    labels = {task: [v for d in splits.values() for v in d.labels[task]] for task in ("topic", "sentiment")}
    groups = [g for d in splits.values() for g in d.groups]
    return texts, labels, groups


def test_size_registers_and_cells(everything):
    texts, labels, groups = everything
    assert set(groups) == REGISTERS | {"crafted"}
    new = [i for i, g in enumerate(groups) if g != "crafted"]
    assert len(new) >= 8000
    for register in REGISTERS:
        rows = [i for i in new if groups[i] == register]
        assert len(rows) >= 1000, register
        assert {labels["sentiment"][i] for i in rows} == {"positive", "negative", "neutral"}, register
        assert len({labels["topic"][i] for i in rows}) >= 6, register
        assert all(3 <= len(texts[i].split()) <= 60 for i in rows), register
    cells = Counter((labels["topic"][i], labels["sentiment"][i]) for i in new)
    assert len(cells) == 24 and min(cells.values()) >= 200


def test_v1_is_the_crafted_register_in_its_own_splits(splits):
    for name, d in splits.items():
        v1 = load_labelled(DATA / f"{name}.csv")
        crafted = d.only_groups(["crafted"])
        assert sorted(crafted.texts) == sorted(v1.texts), name


def test_every_register_is_split_70_15_15(splits):
    for register in REGISTERS:
        sizes = {name: len(d.only_groups([register])) for name, d in splits.items()}
        total = sum(sizes.values())
        for name, share in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
            assert abs(sizes[name] / total - share) < 0.02, (register, name, sizes)


def test_no_duplicates_or_near_duplicates_across_splits(splits):
    assert_no_leakage(splits)


def test_no_template_traces(everything):
    texts = everything[0]
    assert dc.repeated_phrases(texts) == []
    assert dc.repeated_openings(texts) == []
    assert dc.skeleton_pairs(texts) == []


@pytest.mark.parametrize("task", ["topic", "sentiment"])
def test_no_label_shortcuts(everything, task):
    texts, labels, _ = everything
    assert dc.label_shortcuts(texts, labels[task]) == []


@pytest.mark.parametrize("task", ["topic", "sentiment"])
def test_register_marking_words_do_not_beat_the_content(everything, task):
    texts, labels, groups = everything
    r = dc.register_shortcuts(texts, labels[task], groups, folds=3)
    assert r["marker_words"] > 20  # the registers do have their own words (@, lol, eur, q3, ...)
    assert r["markers"] < r["content"]
    if task == "sentiment":  # every register is a third each sentiment: neither its words nor itself tell it
        assert r["markers"] < r["majority"] + 0.10 and r["register"] < r["majority"] + 0.02


def test_agreement_meets_the_bar_on_every_register():
    """kappa >= 0.8 topic and >= 0.7 sentiment on every sample labelled twice (the first sample of each register
    and later batches'); where a register's first sample fell short, on the fresh sample under the amended guide."""
    samples = _kappas((V2 / "agreement.md").read_text(encoding="utf-8"))
    first = samples.pop(next(iter(samples)))
    amended = next((rows for title, rows in samples.items() if title.startswith("After the guide was amended")), {})
    rows = [r for r in first if r[0] not in {a[0] for a in amended}] + [r for rs in samples.values() for r in rs]
    assert {r[0] for r in rows} == REGISTERS | {"crafted"}
    for register, topic, sentiment in rows:
        assert topic >= 0.8 and sentiment >= 0.7, register


def _kappas(text: str) -> dict[str, list[tuple[str, float, float]]]:
    """agreement.md's tables by the line above each: [(register, topic kappa, sentiment kappa)]."""
    tables, title = {}, ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 6 and re.fullmatch(r"\d+", cells[1]):
            tables.setdefault(title, []).append((cells[0], float(cells[3]), float(cells[5])))
        elif line.strip() and not line.startswith("|"):
            title = line.strip()
    return tables


def test_the_second_labels_are_blind_and_cover_ten_percent():
    """Every raw file, of the first batch (raw/<register>.csv) or a later one (raw/<batch>/<register>.csv), has its
    blind sample (relabel/<register>[_<batch>]_blind.csv), ids and text only, of at least 10 % of its rows."""
    files = [(V2 / "raw" / f"{register}.csv", register) for register in REGISTERS]
    files += [(p, f"{p.stem}_{p.parent.name}") for p in (V2 / "raw").glob("*/*.csv")]
    for path, name in files:
        with open(path, encoding="utf-8", newline="") as f:
            n = sum(1 for _ in csv.DictReader(f))
        blind = (V2 / "relabel" / f"{name}_blind.csv").read_text(encoding="utf-8").splitlines()
        assert blind[0] == "id,text"  # no label columns
        assert len(blind) - 1 >= 0.099 * n, name


def test_data_readmes_register_table_is_the_splits(splits):
    """data/README's table of registers: sentences and train / val / test per register, as the splits hold them."""
    table = re.findall(
        r"^\| `(\w+)` \| [^|]+ \| ([0-9,]+) \| ([0-9,]+) / ([0-9,]+) / ([0-9,]+) \|",
        (DATA / "README.md").read_text(encoding="utf-8"),
        re.M,
    )
    sizes = {name: Counter(d.groups) for name, d in splits.items()}
    expected = {
        g: [sum(sizes[s][g] for s in sizes)] + [sizes[s][g] for s in ("train", "val", "test")] for g in sizes["train"]
    }
    assert {g: [int(x.replace(",", "")) for x in cells] for g, *cells in table} == expected


def test_nearest_by_meaning_finds_the_same_scene_in_other_words():
    """The held-out paraphrase check (data/v2/heldout_overlap.py, bench/loro_overlap.py): each sentence's closest
    pool sentence by meaning is its paraphrase, well above an unrelated one."""
    from mtl.datacheck import nearest_by_meaning

    texts = ["The dry cleaner got a red wine stain out of my wedding dress.", "Kick-off was delayed by heavy rain."]
    pool = ["The match started late in a downpour.", "A wine stain came out of my wedding gown at the cleaners."]
    cos, best = nearest_by_meaning(texts, pool)
    assert best.tolist() == [1, 0]
    assert min(cos) > 0.5
    unrelated, _ = nearest_by_meaning(texts[:1], pool[:1])
    assert unrelated[0] < 0.3
