"""Hostile files against the library and the command line: JSON nested thousands deep, integers of thousands
of digits, checkpoints that list millions of labels, a max_seq_length past the backbone's positions. Each is
refused with one line (DataError, CheckpointError, ConfigError; exit status 2 in the CLI), never a traceback,
and before anything of the size it asks for is allocated. (The app's side is in test_bad_inputs.py.)"""

import json
import shutil
import time
import tracemalloc

import pytest
from conftest import TOY, write_csv

import mtl.model
from mtl.bounded_json import MAX_JSON_DEPTH, MAX_JSON_NUMBER_DIGITS, MAX_JSON_VALUES, parse_json
from mtl.checkpoint import MAX_LABELS, MAX_META_BYTES, load_checkpoint, read_meta, save_checkpoint
from mtl.cli import main as cli_main
from mtl.config import ModelConfig
from mtl.data import load_labelled
from mtl.encoder import build_encoder
from mtl.errors import CheckpointError, ConfigError, DataError
from mtl.model import new_model

TASKS = {"topic": ["business", "film", "sports"], "sentiment": ["negative", "neutral", "positive"]}
DEEP = "[" * 100_000 + "]" * 100_000  # Python's parser: RecursionError
HUGE = "1" + "0" * 5000  # Python's int(): ValueError past 4,300 digits


@pytest.fixture(scope="module")
def tiny_ck(tmp_path_factory, tiny_bert):
    path = tmp_path_factory.mktemp("lib") / "ck"
    save_checkpoint(new_model(TASKS, ModelConfig(base_model=tiny_bert), device="cpu", seed=0), path)
    return path


def cli(capsys, *argv):
    code = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *messages):
    lines = err.strip().splitlines()
    assert code == 2 and lines and lines[-1].startswith("error: "), err
    assert all(m in lines[-1] for m in messages), err
    assert "Traceback" not in err and sum(line.startswith("error") for line in lines) == 1


# The bounded JSON reader (mtl.io.parse_json), which data files and checkpoints both go through


@pytest.mark.parametrize(
    "text, message",
    [
        (DEEP, f"nested deeper than {MAX_JSON_DEPTH} levels"),
        ('{"a": {"b": ' + "[" * 40 + "]" * 40 + "}}", f"nested deeper than {MAX_JSON_DEPTH} levels"),
        ('{"n": ' + HUGE + "}", f"a number of 5001 digits, over the limit of {MAX_JSON_NUMBER_DIGITS}"),
        ('{"n": -' + HUGE + ".5e3}", f"a number of 5003 digits, over the limit of {MAX_JSON_NUMBER_DIGITS}"),
        ("[" + "0," * MAX_JSON_VALUES + "0]", f"more than {MAX_JSON_VALUES:,} values"),
    ],
    ids=["deep", "deep-inside", "huge-int", "huge-float", "too-many-values"],
)
def test_parse_json_refuses_what_is_over_its_bounds(text, message):
    with pytest.raises(ValueError, match=message):
        parse_json(text)


def test_parse_json_names_the_line_and_reads_what_is_within_bounds():
    text = '{\n  "ok": [1, 2],\n  "bad": ' + "[" * 50 + "]" * 50 + "\n}"
    with pytest.raises(ValueError) as e:
        parse_json(text)
    assert e.value.lineno == 3
    ok = {
        "brackets in text": "[[[[" * 100 + "{" * 100,
        "digits in text": "9" * 10_000,
        "escaped": 'a \\" [[[ "',
        "deep": json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)),  # 32 with the outer {}
        "n": 10**99,
        "x": -1.5e300,
    }
    assert parse_json(json.dumps(ok)) == ok


# Data files: every command that reads JSONL (predict, train, eval, datacheck)


@pytest.fixture
def hostile_jsonl(tmp_path):
    good = '{"text": "the team won", "topic": "sports", "sentiment": "positive"}\n'
    deep = tmp_path / "deep.jsonl"
    deep.write_text(good + '{"text": "a", "topic": ' + DEEP + "}\n")
    huge = tmp_path / "huge.jsonl"
    huge.write_text(good + '{"text": "a", "topic": ' + HUGE + ', "sentiment": "neutral"}\n')
    return {"deep": (deep, f"nested deeper than {MAX_JSON_DEPTH} levels"), "huge": (huge, "a number of 5001 digits")}


@pytest.mark.parametrize("case", ["deep", "huge"])
@pytest.mark.parametrize("command", ["predict", "train", "eval", "datacheck"])
def test_cli_refuses_hostile_jsonl_in_one_line(command, case, hostile_jsonl, tiny_ck, tiny_bert, tmp_path, capsys):
    path, message = hostile_jsonl[case]
    argv = {
        "predict": ["predict", "--checkpoint", tiny_ck, "--input", path],
        "train": ["train", "--data", path, "--output", tmp_path / "o", "--model", tiny_bert, "--quiet"],
        "eval": ["eval", "--checkpoint", tiny_ck, "--data", path],
        "datacheck": ["datacheck", path],
    }[command]
    code, _, err = cli(capsys, *argv)
    assert_one_line_error(code, err, f"{path}: line 2: ", message)


@pytest.mark.parametrize("case", ["deep", "huge"])
def test_load_labelled_raises_a_data_error(case, hostile_jsonl):
    path, message = hostile_jsonl[case]
    with pytest.raises(DataError, match=message):
        load_labelled(path)
    assert len(load_labelled(write_csv(path.parent / "good.csv", TOY))) == len(TOY)


# Checkpoints: mtl.json


def copy_with_meta(tiny_ck, tmp_path, text: str):
    path = tmp_path / "ck"
    shutil.copytree(tiny_ck, path)
    (path / "mtl.json").write_text(text)
    return path


def edited(tiny_ck, edit) -> dict:
    meta = json.loads((tiny_ck / "mtl.json").read_text())
    edit(meta)
    return meta


@pytest.mark.parametrize(
    "case, message",
    [("deep", f"nested deeper than {MAX_JSON_DEPTH} levels"), ("huge", "a number of 5001 digits")],
)
def test_a_checkpoint_json_with_deep_nesting_or_huge_numbers(case, message, tiny_ck, tmp_path, capsys):
    text = json.dumps(edited(tiny_ck, lambda m: m["metrics"].update(x="HOSTILE")), indent=2)
    text = text.replace('"HOSTILE"', DEEP if case == "deep" else HUGE)
    path = copy_with_meta(tiny_ck, tmp_path, text)
    line = text[: text.index(DEEP if case == "deep" else HUGE)].count("\n") + 1
    with pytest.raises(CheckpointError, match=f"mtl.json: line {line}: {message}"):
        read_meta(path)
    code, _, err = cli(capsys, "predict", "--checkpoint", path, "--text", "the team won")
    assert_one_line_error(code, err, f"{path / 'mtl.json'}: line {line}: ", message)
    code, out, _ = cli(capsys, "predict", "--checkpoint", tiny_ck, "--text", "the team won")
    assert code == 0 and "topic=" in out


class HeadSizes:
    """Records the label count of every head built, to show that none of a forged size ever is."""

    def __init__(self, monkeypatch):
        self.built = []
        real = mtl.model.TaskHead

        def record(in_dim, num_labels, *args, **kwargs):
            self.built.append(num_labels)
            return real(in_dim, num_labels, *args, **kwargs)

        monkeypatch.setattr(mtl.model, "TaskHead", record)


def test_a_checkpoint_listing_3_million_labels_is_refused_quickly_and_small(tiny_ck, tmp_path, monkeypatch):
    labels = [f"label {i}" for i in range(3_000_000)]
    path = copy_with_meta(tiny_ck, tmp_path, json.dumps(edited(tiny_ck, lambda m: m["tasks"].update(topic=labels))))
    labels.clear()  # only the file holds them now
    heads = HeadSizes(monkeypatch)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(CheckpointError, match=f"over the {MAX_META_BYTES // 2**20} MB limit"):
            load_checkpoint(path, "cpu")
        seconds, (_, peak) = time.perf_counter() - t0, tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 2 and peak < 5 * 2**20 and heads.built == []


def test_a_label_list_over_the_cap_is_refused_before_any_head_is_built(tiny_ck, tmp_path, monkeypatch):
    labels = [str(i) for i in range(MAX_LABELS + 1)]
    path = copy_with_meta(tiny_ck, tmp_path, json.dumps(edited(tiny_ck, lambda m: m["tasks"].update(topic=labels))))
    heads = HeadSizes(monkeypatch)
    with pytest.raises(CheckpointError, match=f"task 'topic' lists {MAX_LABELS + 1:,} labels, over the limit"):
        load_checkpoint(path, "cpu")
    assert heads.built == []


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["tasks"].update(topic=[str(i) for i in range(5000)]), "head 'topic' weight"),
        (lambda m: m["model"].update(head_hidden=8192), "head 'topic' weight"),
        (lambda m: m["tasks"].update({f"t{i}": ["a", "b"] for i in range(500)}), "weights are missing"),
    ],
    ids=["labels-beyond-the-head", "hidden-layer-not-in-the-file", "tasks-without-weights"],
)
def test_a_label_list_or_hidden_size_the_heads_file_does_not_have_is_refused_before_building(
    edit, message, tiny_ck, tmp_path, monkeypatch
):
    path = copy_with_meta(tiny_ck, tmp_path, json.dumps(edited(tiny_ck, edit)))
    heads = HeadSizes(monkeypatch)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, "cpu")
    assert heads.built == []
    monkeypatch.undo()
    assert load_checkpoint(tiny_ck, "cpu").tasks == TASKS


# max_seq_length against the backbone's positions (512 for all-MiniLM-L6-v2, 128 for the tiny test BERT)


def test_build_encoder_refuses_more_tokens_than_the_backbone_has_positions(tiny_bert):
    with pytest.raises(ConfigError, match="max_seq_length 129 is over the 128 positions of base model"):
        build_encoder(tiny_bert, max_seq_length=129)
    assert build_encoder(tiny_bert, max_seq_length=128).max_seq_length == 128


def test_the_default_backbone_takes_at_most_512_tokens():
    with pytest.raises(ConfigError, match="max_seq_length 513 is over the 512 positions of base model 'default'"):
        build_encoder("default", max_seq_length=513)


@pytest.mark.parametrize("length", ["129", "1000", "100000"])
def test_cli_max_seq_length_over_the_backbone_is_one_line(length, tiny_bert, toy_csv, tmp_path, capsys):
    message = "max_seq_length must be <= 8192" if length == "100000" else f"max_seq_length {length} is over the 128"
    argv = ["--data", toy_csv, "--output", tmp_path / "o", "--model", tiny_bert, "--quiet", "--epochs", "1"]
    code, _, err = cli(capsys, "train", *argv, "--max-seq-length", length)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "o").exists()
    message = f"max_seq_length {length} is over the 128 positions"  # encode has no ModelConfig: the backbone's bound
    long_input = tmp_path / "long.txt"
    long_input.write_text("word " * 2000 + "\n")
    code, _, err = cli(
        capsys, "encode", "--input", long_input, "--output", tmp_path / "e.npy", "--model", tiny_bert,
        "--max-seq-length", length,
    )  # fmt: skip
    assert_one_line_error(code, err, message)


def test_a_checkpoint_whose_max_seq_length_is_over_the_backbone_is_refused(tiny_ck, tmp_path, capsys):
    path = copy_with_meta(
        tiny_ck, tmp_path, json.dumps(edited(tiny_ck, lambda m: m["model"].update(max_seq_length=1000)))
    )
    code, _, err = cli(capsys, "predict", "--checkpoint", path, "--text", "word " * 2000)
    assert_one_line_error(code, err, str(path), "max_seq_length 1000 is over the 128 positions")


def test_the_cli_turns_a_recursion_error_from_any_reader_into_one_line(toy_csv, tmp_path, capsys, monkeypatch):
    import mtl.data

    def unbounded(path, text):  # a reader that forgot the bounds
        json.loads(DEEP)
        yield

    monkeypatch.setattr(mtl.data, "_rows_csv", unbounded)
    code, _, err = cli(capsys, "datacheck", toy_csv)
    assert_one_line_error(code, err, "nested too deeply")


def test_predict_output_csv_never_starts_a_cell_with_a_formula(tiny_ck, tmp_path, capsys):
    import csv

    texts = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1+1", "the team won"]
    source = tmp_path / "in.csv"
    write_csv(source, [(t,) for t in texts], header=("text",))
    code, _, err = cli(capsys, "predict", "--checkpoint", tiny_ck, "--input", source, "--output", tmp_path / "p.csv")
    assert code == 0, err
    cells = [row[0] for row in csv.reader(open(tmp_path / "p.csv", encoding="utf-8", newline=""))][1:]
    assert cells == ["'" + t.strip() for t in texts[:-1]] + ["the team won"]  # load_texts strips the tab
