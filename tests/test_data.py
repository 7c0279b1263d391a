import json

import pytest
from conftest import write_csv

from mtl.data import load_labelled, load_texts
from mtl.errors import DataError


def test_csv_and_jsonl_load_the_same(tmp_path, toy_csv):
    a = load_labelled(toy_csv)
    jl = tmp_path / "toy.jsonl"
    jl.write_text(
        "\n".join(
            json.dumps({"text": t, "topic": x, "sentiment": s})
            for t, x, s in zip(a.texts, a.labels["topic"], a.labels["sentiment"])
        )
    )
    b = load_labelled(jl)
    assert a.texts == b.texts and a.labels == b.labels and a.tasks == b.tasks
    assert set(a.tasks) == {"topic", "sentiment"}
    assert a.tasks["sentiment"] == ["negative", "neutral", "positive"]


def test_tasks_come_from_columns_and_files_may_label_some_tasks(tmp_path):
    topics = write_csv(tmp_path / "t.csv", [("a", "x"), ("b", "y")], header=("text", "topic"))
    moods = write_csv(tmp_path / "m.csv", [("c", "up"), ("d", "down"), ("e", "flat")], header=("text", "mood"))
    d = load_labelled([topics, moods])
    assert d.tasks == {"topic": ["x", "y"], "mood": ["down", "flat", "up"]}
    assert d.labels["topic"] == ["x", "y", None, None, None]
    assert d.label_ids("mood") == [-1, -1, 2, 0, 1]


def test_three_tasks_are_fine(tmp_path):
    p = write_csv(
        tmp_path / "three.csv", [("a", "x", "p", "1"), ("b", "y", "q", "2")], header=("text", "t1", "t2", "t3")
    )
    assert list(load_labelled(p).tasks) == ["t1", "t2", "t3"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("sentence,topic\nhello,x\nbye,y\n", "no 'text' column"),
        ("text,topic\nhello,x\n   ,y\n", "line 3: empty text"),
        ("text\nhello\n", "no label columns"),
        ("text,topic\nhello,x,extra\n", "line 2: 3 fields but the header has 2"),
        ("", "the file is empty"),
        ("text,topic\n", "no data rows"),
        ("text,topic\na,x\nb,\n", "line 3: no label for any task"),
        ("text,topic\na,x\nb,x\n", "only 1 distinct label"),
    ],
)
def test_bad_csv_gets_a_specific_error(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as e:
        load_labelled(p)
    assert str(p) in str(e.value)


def test_non_utf8_names_the_line(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes("text,topic\nok,x\ncaf\xe9 au lait,y\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 3: not valid UTF-8"):
        load_labelled(p)


def test_label_outside_the_label_set(tmp_path):
    p = write_csv(tmp_path / "v.csv", [("a", "x"), ("b", "zzz")], header=("text", "topic"))
    with pytest.raises(DataError, match=r"line 3: label 'zzz' is not in the label set of task 'topic'"):
        load_labelled(p, label_sets={"topic": ["x", "y"]})


def test_bad_jsonl_and_unknown_extension(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "a", "topic": "x"}\n[1, 2]\n')
    with pytest.raises(DataError, match="line 2: expected a JSON object"):
        load_labelled(p)
    p.write_text('{"text": "a", "topic": "x"}\n{"text": oops}\n')
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_labelled(p)
    q = tmp_path / "data.xlsx"
    q.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="unsupported file type"):
        load_labelled(q)
    with pytest.raises(DataError, match="no such file"):
        load_labelled(tmp_path / "missing.csv")


def test_nothing_is_half_loaded(tmp_path, toy_csv):
    bad = write_csv(tmp_path / "bad.csv", [("a", "x", "p"), ("", "y", "q")])
    with pytest.raises(DataError):
        load_labelled([toy_csv, bad])  # one bad file fails the whole load: no partial Dataset comes back


def test_load_texts(tmp_path, toy_csv):
    txt = tmp_path / "in.txt"
    txt.write_text("first line\n\n  second line  \n")
    assert load_texts(txt) == ["first line", "second line"]
    assert len(load_texts(toy_csv)) == 36
    with pytest.raises(DataError, match="no 'body' column"):
        load_texts(toy_csv, text_column="body")
    txt.write_text("\n \n")
    with pytest.raises(DataError, match="no text"):
        load_texts(txt)


def test_label_ids_in_another_label_order():
    from mtl.data import Dataset

    d = Dataset(["a", "b", "c"], {"x": ["p", None, "q"]})
    assert d.label_ids("x") == [0, -1, 1]
    assert d.label_ids("x", ["q", "p", "r"]) == [1, -1, 0]  # e.g. a model's labels
    with pytest.raises(DataError, match=r"task 'x': label\(s\) 'q' not in the label set \(p, r\)"):
        d.label_ids("x", ["p", "r"])


def test_select_head_and_sample_keep_labels_in_line():
    from mtl.data import Dataset

    d = Dataset(["a", "b", "c", "d"], {"x": ["p", None, "q", "p"], "y": ["u", "v", None, "v"]})
    s = d.select([3, 0])
    assert s.texts == ["d", "a"] and s.labels == {"x": ["p", "p"], "y": ["v", "u"]}
    assert s.label_sets == d.label_sets == {"x": ["p", "q"], "y": ["u", "v"]}  # "q" kept without an example
    assert d.head(2).texts == ["a", "b"] and d.head(2).labels["y"] == ["u", "v"]
    assert d.head(4) is d and d.head(10) is d
    sample = d.sample(2, seed=0)
    assert len(sample) == 2 and sample.texts == sorted(sample.texts)  # file order kept
    assert sample.texts == d.sample(2, seed=0).texts and d.sample(9, seed=0) is d
    for i, text in enumerate(sample.texts):
        j = d.texts.index(text)
        assert all(sample.labels[t][i] == d.labels[t][j] for t in d.labels)


def test_restrict_keeps_only_labelled_rows():
    from mtl.data import Dataset

    d = Dataset(["a", "b", "c"], {"x": ["p", None, "q"], "y": [None, "u", "v"]})
    r = d.restrict(["x"])
    assert r.texts == ["a", "c"] and list(r.labels) == ["x"]
    assert d.restrict(None) is d and d.restrict([]) is d


def test_evaluate_counts_labels_in_the_models_order(tiny_model, toy_data):
    from mtl.data import Dataset
    from mtl.evaluate import evaluate

    reordered = Dataset(toy_data.texts, toy_data.labels, {t: labels[::-1] for t, labels in toy_data.label_sets.items()})
    assert evaluate(tiny_model, reordered) == evaluate(tiny_model, toy_data)


def _with_registers(tmp_path):
    rows = [("a", "x", "p", "news"), ("b", "y", "q", "posts"), ("c", "x", "q", "news"), ("d", "y", "p", "")]
    return write_csv(tmp_path / "reg.csv", rows, header=("text", "topic", "sentiment", "register"))


def test_register_column_is_a_group_not_a_task(tmp_path):
    d = load_labelled(_with_registers(tmp_path))
    assert set(d.tasks) == {"topic", "sentiment"}
    assert d.groups == ["news", "posts", "news", None]
    assert d.group_indices() == {"news": [0, 2], "posts": [1]}
    # a file without the column has no groups; naming no group column makes it a task again
    assert load_labelled(write_csv(tmp_path / "plain.csv", [("a", "x", "p"), ("b", "y", "q")])).groups is None
    assert "register" in load_labelled(_with_registers(tmp_path), group_column=None).tasks


def test_selection_keeps_groups_and_leave_one_group_out(tmp_path):
    d = load_labelled(_with_registers(tmp_path))
    assert d.select([2, 1]).groups == ["news", "posts"]
    assert d.restrict(["topic"]).groups == d.groups
    rest, held = d.split_by_group("news")
    assert held.texts == ["a", "c"] and held.groups == ["news", "news"]
    assert rest.texts == ["b", "d"] and "news" not in rest.groups
    assert d.only_groups(["posts"]).texts == ["b"]
    with pytest.raises(DataError, match="no group 'tweets'"):
        d.split_by_group("tweets")
    with pytest.raises(DataError, match="no group"):
        d.only_groups(["tweets"])
