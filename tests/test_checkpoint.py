import json
import shutil

import pytest
import torch
from conftest import make_tiny_bert

from mtl.checkpoint import check_save_target, export_standalone, load_checkpoint, round_weights, save_checkpoint
from mtl.config import ModelConfig, TrainConfig
from mtl.errors import CheckpointError, ConfigError
from mtl.model import new_model
from mtl.train import train

TEXTS = ["the team won the match", "awful stock market news", "i love this film", "x"]


def trained(model, data, freeze, tmp_path):
    events = list(
        train(model, data, data, TrainConfig(epochs=2, batch_size=8, freeze=freeze), output_dir=tmp_path / "ck")
    )
    return events[-1]["checkpoint"]


def assert_same_predictions(a, b):
    pa, pb = a.predict_proba(TEXTS), b.predict_proba(TEXTS)
    assert pa.keys() == pb.keys()
    for t in pa:
        assert torch.equal(pa[t], pb[t]), t


@pytest.mark.parametrize("freeze", ["none", "bottom:1", "backbone"])
def test_round_trip_gives_identical_predictions(tiny_model, toy_data, tmp_path, freeze):
    path = trained(tiny_model, toy_data, freeze, tmp_path)
    loaded = load_checkpoint(path, device="cpu")
    assert loaded.tasks == tiny_model.tasks
    assert_same_predictions(tiny_model, loaded)
    meta = json.loads((tmp_path / "ck" / "mtl.json").read_text())
    assert meta["train"]["freeze"] == freeze and meta["metrics"]["validation"]["topic"]["accuracy"] >= 0


def test_frozen_encoder_checkpoint_is_small_and_needs_its_base(tiny_bert, toy_data, tmp_path):
    base = make_tiny_bert(tmp_path / "base", seed=0)
    model = new_model(toy_data.tasks, ModelConfig(base_model=str(base)), device="cpu", seed=0)
    path = trained(model, toy_data, "backbone", tmp_path)
    files = list((tmp_path / "ck").iterdir())
    assert not any(f.name.startswith("encoder.") for f in files)
    assert sum(f.stat().st_size for f in files) < 20_000
    load_checkpoint(path, device="cpu")  # same base: fine
    make_tiny_bert(base, seed=1)  # the base model directory now holds other weights
    with pytest.raises(CheckpointError, match="different base model"):
        load_checkpoint(path, device="cpu")


def test_partial_fine_tune_stores_only_trained_layers(tiny_model, toy_data, tmp_path):
    trained(tiny_model, toy_data, "bottom:1", tmp_path)
    meta = json.loads((tmp_path / "ck" / "mtl.json").read_text())
    assert meta["encoder_params"] and all(n.startswith("encoder.layer.1.") for n in meta["encoder_params"])


@pytest.fixture
def saved(tiny_model, toy_data, tmp_path):
    return tmp_path / trained(tiny_model, toy_data, "bottom:1", tmp_path)


def _meta(path):
    return json.loads((path / "mtl.json").read_text())


def _write_meta(path, meta):
    (path / "mtl.json").write_text(json.dumps(meta))


def test_missing_and_corrupted_files(saved):
    meta = _meta(saved)
    heads = saved / meta["files"]["heads"]
    data = heads.read_bytes()
    heads.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_checkpoint(saved, "cpu")
    heads.unlink()
    with pytest.raises(CheckpointError, match="missing weight file"):
        load_checkpoint(saved, "cpu")
    (saved / "mtl.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(saved, "cpu")
    (saved / "mtl.json").unlink()
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(saved, "cpu")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(saved / "nope", "cpu")


def test_pickle_payload_is_refused(saved):
    import pickle

    meta = _meta(saved)
    evil = pickle.dumps({"x": 1})
    name = meta["files"]["heads"]
    (saved / name).write_bytes(evil)
    import hashlib

    meta["sha256"][name] = hashlib.sha256(evil).hexdigest()  # even with a matching checksum
    _write_meta(saved, meta)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(saved, "cpu")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("tasks"), "field 'tasks' is missing"),
        (lambda m: m.update(tasks=["topic"]), "field 'tasks' is missing or not a dict"),
        (lambda m: m["model"].update(pooling="sum"), "pooling must be one of"),
        (lambda m: m["model"].update(colour="red"), "unknown ModelConfig field"),
        (lambda m: m["tasks"]["topic"].append("extra"), "label list does not match the head"),
        (lambda m: m["tasks"].pop("sentiment"), "unknown head"),
        (lambda m: m.update(format="other"), "not an mtl checkpoint"),
        (lambda m: m["files"].update(heads="../../etc/passwd"), "bad file name"),
        (lambda m: m.update(encoder_params=[]), "encoder weights do not match"),
    ],
)
def test_bad_metadata(saved, edit, message):
    meta = _meta(saved)
    edit(meta)
    _write_meta(saved, meta)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(saved, "cpu")


def test_overwrite_keeps_one_consistent_version(tiny_model, toy_data, tmp_path):
    path = tmp_path / "ck"
    save_checkpoint(tiny_model, path)
    first = load_checkpoint(path, "cpu")
    with torch.no_grad():
        tiny_model.heads["topic"].net[-1].bias.add_(1.0)
    save_checkpoint(tiny_model, path)
    assert len(list(path.glob("heads.*.safetensors"))) == 1  # the old weights are cleaned up
    assert_same_predictions(tiny_model, load_checkpoint(path, "cpu"))
    with pytest.raises(AssertionError):
        assert_same_predictions(first, load_checkpoint(path, "cpu"))


def test_export_loads_with_plain_sentence_transformers(saved, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = load_checkpoint(saved, "cpu")
    out = export_standalone(model, tmp_path / "export")
    st = SentenceTransformer(str(out), device="cpu")
    ours = model.encoder.encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(st.encode(TEXTS, convert_to_tensor=True), ours, atol=1e-6)
    again = load_checkpoint(out, "cpu")
    assert_same_predictions(model, again)
    shutil.rmtree(saved)  # the export does not depend on the original checkpoint
    assert_same_predictions(model, load_checkpoint(out, "cpu"))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_save_is_half_size_and_round_trips_exactly(tiny_model, toy_data, tmp_path, dtype):
    list(train(tiny_model, toy_data, None, TrainConfig(epochs=1, batch_size=8)))
    full = save_checkpoint(tiny_model, tmp_path / "full")
    round_weights(tiny_model, dtype)  # the explicit step: the weights in memory become the ones saved
    half = save_checkpoint(tiny_model, tmp_path / "half", dtype=dtype)
    size = lambda d: next(d.glob("encoder.*")).stat().st_size  # noqa: E731
    assert size(half) < 0.55 * size(full)
    assert json.loads((half / "mtl.json").read_text())["encoder_dtype"] == dtype
    assert_same_predictions(tiny_model, load_checkpoint(half, "cpu"))


def _encoder_weights(model):
    from mtl.encoder import hf_model

    return {n: p.detach().clone() for n, p in hf_model(model.encoder).named_parameters()}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_saving_leaves_the_weights_alone_and_round_weights_makes_a_reload_bit_identical(
    tiny_model, toy_data, tmp_path, dtype
):
    list(train(tiny_model, toy_data, None, TrainConfig(epochs=1, batch_size=8)))
    before = _encoder_weights(tiny_model)
    save_checkpoint(tiny_model, tmp_path / "unrounded", dtype=dtype)
    after = _encoder_weights(tiny_model)
    assert all(torch.equal(before[n], after[n]) for n in before)  # no side effect on the model in memory
    round_weights(tiny_model, dtype)
    rounded = _encoder_weights(tiny_model)
    changed = [n for n in before if not torch.equal(before[n], rounded[n])]
    assert changed and set(changed) <= tiny_model.trained_params  # only the trained encoder weights
    reloaded = _encoder_weights(load_checkpoint(save_checkpoint(tiny_model, tmp_path / "rounded", dtype=dtype), "cpu"))
    assert all(torch.equal(rounded[n], reloaded[n]) for n in rounded)
    round_weights(tiny_model, "float32")  # a float32 save rounds nothing
    assert all(torch.equal(rounded[n], p) for n, p in _encoder_weights(tiny_model).items())
    with pytest.raises(ConfigError, match="save dtype must be one of"):
        round_weights(tiny_model, "int8")


def test_checkpoint_meta_is_declared_and_set_by_load(tiny_model, tmp_path):
    assert tiny_model.checkpoint_meta is None
    save_checkpoint(tiny_model, tmp_path / "ck", metrics={"validation": {"topic": {"accuracy": 0.5}}})
    loaded = load_checkpoint(tmp_path / "ck", "cpu")
    assert loaded.checkpoint_meta["tasks"] == tiny_model.tasks
    assert loaded.checkpoint_meta["metrics"]["validation"]["topic"]["accuracy"] == 0.5


@pytest.mark.parametrize("validation", [True, False])
def test_the_loop_always_leaves_a_checkpoint_that_records_the_freeze(tiny_model, toy_data, tmp_path, validation):
    """Best state with validation data, else the final one; even a run stopped before its first step."""
    import threading

    stop = threading.Event()
    stop.set()
    config = TrainConfig(epochs=1, batch_size=8, freeze="bottom:1")
    out = tmp_path / "out" / "ck"
    done = list(train(tiny_model, toy_data, toy_data if validation else None, config, stop, out))[-1]
    assert done["stopped"] and done["steps"] == 0 and done["checkpoint"] == str(out)
    meta = json.loads((out / "mtl.json").read_text())
    assert meta["freeze"] == ["embeddings", "layer.0"] and meta["train"]["freeze"] == "bottom:1"
    assert [p.name for p in out.parent.iterdir()] == ["ck"]  # no temporary folder left beside it


def test_a_run_refuses_to_replace_a_folder_that_is_not_a_checkpoint(tiny_model, toy_data, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="not a checkpoint.*new or empty folder"):
        next(train(tiny_model, toy_data, None, TrainConfig(epochs=1), output_dir=tmp_path / "mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        check_save_target(tmp_path / "file")
    check_save_target(tmp_path / "new")  # a new folder, an empty one or a checkpoint: fine
    (tmp_path / "empty").mkdir()
    check_save_target(tmp_path / "empty")
    save_checkpoint(tiny_model, tmp_path / "ck")
    check_save_target(tmp_path / "ck")


def test_best_saves_replace_the_folder_whole(tiny_model, toy_data, tmp_path):
    """Each best state is written to a new folder that replaces the last: no file of an earlier save stays."""
    config = TrainConfig(epochs=3, batch_size=8, lr_heads=1e-2, freeze="bottom:1")
    out = tmp_path / "out" / "ck"
    events = list(train(tiny_model, toy_data, toy_data, config, output_dir=out))
    assert sum(e.get("best", False) for e in events) >= 2  # saved more than once
    meta = json.loads((out / "mtl.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted([*meta["files"].values(), "mtl.json"])
    assert [p.name for p in out.parent.iterdir()] == ["ck"]
    assert_same_predictions(tiny_model, load_checkpoint(out, "cpu"))
