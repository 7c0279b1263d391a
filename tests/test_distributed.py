"""Distributed training through Accelerate: a real two-process run (torchrun, gloo on the CPU) against a
single-process run of the same command; sharding helpers. (Hugging Face datasets: tests/test_hf_data.py.)

Tolerance: with dropout off everywhere, a two-process run computes the same gradients as one process up to
float32 summation order, so weights agree to 1e-5 (measured: at most 1.5e-6), the validation metrics the
runs report agree (accuracy and macro-F1 exactly, loss to 1e-5) and so do predicted probabilities (1e-5)."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from conftest import REPO, TOY, make_tiny_bert, write_csv

from mtl.checkpoint import load_checkpoint
from mtl.cli import main
from mtl.config import ModelConfig, TrainConfig
from mtl.data import load_labelled
from mtl.distributed import AccelerateRunner, interleave, make_accelerator, wants_accelerator
from mtl.errors import ConfigError
from mtl.evaluate import evaluate
from mtl.model import new_model
from mtl.train import train

ATOL = 1e-5


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is faster (and what the workers use)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def still_bert(tmp_path_factory):
    """The tiny BERT with dropout off, so that one and two processes can compute the same thing."""
    path = make_tiny_bert(tmp_path_factory.mktemp("still_bert"))
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist_data")
    rows = [(f"{t} {'very ' * (i % 3)}".strip(), top, sen) for i in range(4) for t, top, sen in TOY]
    return write_csv(d / "train.csv", rows), write_csv(d / "val.csv", rows[:35])  # 35: uneven shards


def _command(still_bert, files, output, extra):
    train_csv, val_csv = files
    options = "--device cpu --seed 3 --dropout 0 --epochs 3 --batch-size 7 --lr-encoder 1e-3 --lr-heads 1e-2 --quiet"
    paths = ["--data", train_csv, "--val", val_csv, "--output", output, "--model", still_bert]
    return ["train", *paths, *options.split(), *extra.split()]


def _torchrun(args, timeout=240):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO),
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtl"]
    proc = subprocess.Popen(
        cmd + [str(a) for a in args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        out, _ = proc.communicate()
        pytest.fail(f"two-process run took over {timeout}s:\n{out[-3000:]}")
    return proc.returncode, out


# The hardest case for sharding in one run (each torchrun start costs ~15 s here): one task per batch (the other
# head sits out: DDP's unused parameters), a frozen-prefix cache, learned task weights (synced by hand),
# micro-batches of each process's share; batch 7 of 36 sentences leaves a last batch of 1, so the second
# process has an empty share that step; 35 validation sentences shard unevenly.
EXTRA = "--task-sampling alternate --freeze bottom:1 --loss-weighting uncertainty --grad-accum 2"


def test_two_processes_train_like_one(still_bert, files, tmp_path, capsys, one_thread):
    one, two = tmp_path / "one", tmp_path / "two"
    code, _, err = _run(capsys, _command(still_bert, files, one, EXTRA))
    assert code == 0, err
    code, out = _torchrun(_command(still_bert, files, two, EXTRA))
    assert code == 0, out[-3000:]
    # one process talks and writes: one summary, one set of epoch lines, one checkpoint
    assert out.count("accelerate: 2 process(es), MULTI_CPU") == 1, out[-3000:]
    assert out.count("done in ") == 1 and out.count("epoch 3 step") == 1
    names = sorted(p.name for p in two.iterdir())
    assert names[-1] == "mtl.json" and len(names) == len(json.loads((two / "mtl.json").read_text())["files"]) + 1

    metrics = {d: json.loads((d / "mtl.json").read_text())["metrics"]["validation"] for d in (one, two)}
    for task, m in metrics[one].items():
        assert metrics[two][task]["accuracy"] == m["accuracy"] and metrics[two][task]["macro_f1"] == m["macro_f1"]
        assert metrics[two][task]["loss"] == pytest.approx(m["loss"], abs=ATOL)

    a, b = load_checkpoint(one, device="cpu"), load_checkpoint(two, device="cpu")
    assert a.trained_params == b.trained_params
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    worst = max((pa[n] - pb[n]).abs().max().item() for n in pa)
    assert worst < ATOL, f"weights differ by {worst}"

    # the distributed checkpoint, loaded in this one process: reproducible, close to the single-process model,
    # and it gives back the validation metrics the two-process run reported
    val = load_labelled(files[1], label_sets=b.tasks)
    again = load_checkpoint(two, device="cpu").predict_proba(val.texts)
    probs = b.predict_proba(val.texts)
    assert all(torch.equal(probs[t], again[t]) for t in probs)
    assert all(torch.allclose(probs[t], a.predict_proba(val.texts)[t], atol=ATOL) for t in probs)
    for task, m in evaluate(b, val).items():
        assert m["accuracy"] == metrics[two][task]["accuracy"]
        assert m["loss"] == pytest.approx(metrics[two][task]["loss"], abs=ATOL)


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_grad_accum_gives_the_same_update_in_one_process(still_bert, files, one_thread):
    data = load_labelled(files[0])
    runs = []
    for accum in (1, 3):
        model = new_model(data.tasks, ModelConfig(base_model=still_bert, dropout=0.0), device="cpu", seed=0)
        config = TrainConfig(epochs=1, batch_size=7, lr_encoder=1e-3, seed=1, grad_accum=accum)
        events = list(train(model, data, None, config))
        runs.append((events, _weights(model)))
    (ev1, w1), (ev3, w3) = runs
    assert [e["type"] for e in ev1] == [e["type"] for e in ev3]
    steps1, steps3 = ([e for e in ev if e["type"] == "step"] for ev in (ev1, ev3))
    assert set(steps1[0]) == set(steps3[0])
    assert [e["loss"] for e in steps3] == pytest.approx([e["loss"] for e in steps1], abs=ATOL)
    assert max((w1[n] - w3[n]).abs().max().item() for n in w1) < ATOL


@pytest.fixture
def one_process_accelerator():
    """An Accelerator in this (unlaunched) process; Accelerate's global state is reset afterwards."""
    from accelerate.state import AcceleratorState

    yield make_accelerator("cpu")
    AcceleratorState._reset_state(reset_partial_state=True)


def test_the_accelerate_runner_in_one_process_trains_like_the_local_runner(
    still_bert, files, one_thread, one_process_accelerator
):
    """The runner interface: train(runner=AccelerateRunner(...)) gives the plain loop's losses and weights."""
    data = load_labelled(files[0])
    config = TrainConfig(epochs=1, batch_size=7, lr_encoder=1e-3, seed=1, loss_weighting="uncertainty")
    runs = []
    for runner in (None, AccelerateRunner(one_process_accelerator, grad_accum=2)):
        model = new_model(data.tasks, ModelConfig(base_model=still_bert, dropout=0.0), device="cpu", seed=0)
        events = list(train(model, data, data, config, runner=runner))
        runs.append((events, _weights(model)))
    (ev1, w1), (ev2, w2) = runs
    assert [e["type"] for e in ev1] == [e["type"] for e in ev2]
    steps1, steps2 = ([e for e in ev if e["type"] == "step"] for ev in (ev1, ev2))
    assert [e["loss"] for e in steps2] == pytest.approx([e["loss"] for e in steps1], abs=ATOL)
    assert max((w1[n] - w2[n]).abs().max().item() for n in w1) < ATOL
    assert ev2[-1]["best_metrics"]["topic"]["accuracy"] == ev1[-1]["best_metrics"]["topic"]["accuracy"]


def test_interleave_restores_the_order_of_sharded_rows():
    n, world = 7, 3
    shards = [list(range(r, n, world)) for r in range(world)]  # what process r predicted: rows r, r+3, ...
    per = max(len(s) for s in shards)
    gathered = torch.tensor([s + [-1] * (per - len(s)) for s in shards], dtype=torch.float).reshape(-1, 1)
    assert interleave(gathered, world, n).flatten().tolist() == list(range(n))


def test_accelerate_is_used_only_when_asked(monkeypatch):
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "ACCELERATE_MIXED_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    assert not wants_accelerator() and not wants_accelerator("no")
    assert wants_accelerator("bf16")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # accelerate launch, one process, no mixed precision
    assert not wants_accelerator()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert wants_accelerator()


def test_bad_scale_out_options():
    with pytest.raises(ConfigError, match="grad_accum"):
        TrainConfig(grad_accum=0)
    with pytest.raises(ConfigError, match="fp16 mixed precision needs a GPU"):
        make_accelerator("cpu", "fp16")
