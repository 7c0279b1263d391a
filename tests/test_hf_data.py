"""Hugging Face `datasets` as training data (mtl/hf_data.py): hf:NAME[:SPLIT] and save_to_disk folders, and the
one-line errors when the package, the network or a split is missing. (Moved from tests/test_distributed.py.)"""

import json
import sys

import pytest
import torch
from conftest import TOY

from mtl.checkpoint import load_checkpoint
from mtl.cli import main
from mtl.errors import DataError
from mtl.hf_data import load_data


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_dataset_source_without_the_datasets_package_is_one_clear_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(DataError, match=r"needs the `datasets` package \(pip install datasets\)"):
        load_data("hf:stanfordnlp/imdb")
    code, _, err = _run(capsys, ["train", "--data", "hf:stanfordnlp/imdb", "--output", tmp_path / "x"])
    assert code == 2 and err.startswith("error: hf:stanfordnlp/imdb:") and "pip install datasets" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_hub_dataset_offline_is_one_clear_line(monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="offline.*save_to_disk"):
        load_data("hf:no-such-user/no-such-dataset:train")
    with pytest.raises(DataError, match="expected hf:NAME"):
        load_data("hf:a:b:c:d")


def _save_toy_dataset(directory):
    """A DatasetDict on disk: a class-label task, a string task and an integer column that is not a task."""
    datasets = pytest.importorskip("datasets")
    import pyarrow as pa
    from datasets.table import InMemoryTable

    topics = ["business", "film", "sports"]
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "topic": datasets.ClassLabel(names=topics),
            "sentiment": datasets.Value("string"),
            "idx": datasets.Value("int32"),
        }
    )
    rows = [(f"{t} {'very ' * (i % 3)}".strip(), top, sen) for i in range(4) for t, top, sen in TOY]

    def split(part, name):  # built from an Arrow table: no fingerprint hashing (fragile with some dill versions)
        table = pa.table(
            {
                "text": [r[0] for r in part],
                "topic": pa.array([topics.index(r[1]) for r in part], pa.int64()),
                "sentiment": [r[2] for r in part],
                "idx": pa.array(range(len(part)), pa.int32()),
            }
        ).cast(features.arrow_schema)
        return datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features), fingerprint=name)

    datasets.DatasetDict({"train": split(rows, "toy-train"), "validation": split(rows[:9], "toy-val")}).save_to_disk(
        str(directory)
    )
    return directory


def test_train_from_a_local_datasets_folder(tiny_bert, tmp_path, capsys):
    folder = _save_toy_dataset(tmp_path / "toy_ds")
    data = load_data(folder)
    assert len(data) == 36 and data.tasks["topic"] == ["business", "film", "sports"] and "idx" not in data.tasks
    assert len(load_data(f"{folder}:validation")) == 9
    with pytest.raises(DataError, match="no split 'test'"):
        load_data(f"{folder}:test")
    out = tmp_path / "ck"
    argv = ["train", "--data", folder, "--val", folder, "--output", out, "--model", tiny_bert, "--epochs", "1"]
    code, _, err = _run(capsys, argv + ["--device", "cpu", "--quiet"])
    assert code == 0, err
    assert "validation: 9" in err and json.loads((out / "mtl.json").read_text())["metrics"]["validation"]["topic"]
    assert torch.isfinite(load_checkpoint(out, device="cpu").predict_proba(["the team won"])["topic"]).all()
