import shutil
import threading

import numpy as np
import pytest
import torch

from mtl.config import ModelConfig, TrainConfig
from mtl.encoder import hf_model
from mtl.errors import ConfigError
from mtl.model import new_model
from mtl.sampling import epoch_plan
from mtl.train import train


def losses(model, data, **kw):
    return [
        e["loss"] for e in train(model, data, data, TrainConfig(epochs=2, batch_size=8, **kw)) if e["type"] == "step"
    ]


def test_events_and_learning(tiny_model, toy_data):
    events = list(
        train(
            tiny_model,
            toy_data,
            toy_data,
            TrainConfig(epochs=8, batch_size=6, lr_encoder=3e-3, lr_heads=1e-2, warmup_ratio=0.0),
        )
    )
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("eval") == 8
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    assert set(steps[0]) >= {"loss", "losses", "lr_encoder", "lr_heads", "examples_per_sec", "tasks", "epoch"}
    first = np.mean([e["loss"] for e in steps[:6]])
    last = np.mean([e["loss"] for e in steps[-6:]])
    assert last < first * 0.5
    assert events[-1]["best_metrics"]["topic"]["accuracy"] > 0.9


def test_same_seed_same_loss_curve(tiny_bert, toy_data):
    def curve(seed):
        m = new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=seed)
        return losses(m, toy_data, seed=seed)

    a, b, c = curve(1), curve(1), curve(2)
    assert a == b
    assert a != c


def test_stop_mid_run_leaves_a_usable_model(tiny_model, toy_data, tmp_path):
    stop = threading.Event()
    seen = []
    for e in train(
        tiny_model, toy_data, toy_data, TrainConfig(epochs=50, batch_size=4), stop=stop, output_dir=tmp_path / "ck"
    ):
        seen.append(e)
        if e["type"] == "step" and e["step"] == 3:
            stop.set()
    done = seen[-1]
    assert done["type"] == "done" and done["stopped"] and done["steps"] == 3
    assert done["checkpoint"] and (tmp_path / "ck" / "mtl.json").exists()
    pred = tiny_model.predict(["the team won"])[0]
    assert set(pred) == {"topic", "sentiment"} and abs(sum(pred["topic"]["probs"].values()) - 1) < 1e-5


def poisoned_run(model, data, poison_at: int, **config):
    """(events, the heads' weights at the start): a run whose topic head turns NaN after step `poison_at`."""
    good, events = None, []
    for e in train(model, data, None, TrainConfig(epochs=3, batch_size=4, **config)):
        events.append(e)
        if e["type"] == "start":
            good = {n: p.detach().clone() for n, p in model.heads.named_parameters()}
        if e["type"] == "step" and e["step"] == poison_at:
            with torch.no_grad():
                model.heads["topic"].net[-1].weight.fill_(float("nan"))
    return events, good


def test_non_finite_loss_stops_and_keeps_last_good_weights(tiny_model, toy_data):
    events, good = poisoned_run(tiny_model, toy_data, 2)
    assert events[-2]["type"] == "error" and "the loss became nan" in events[-2]["message"]
    assert events[-1]["failed"]
    for n, p in tiny_model.heads.named_parameters():
        assert torch.isfinite(p).all()
        assert torch.equal(p, good[n])  # restored to the snapshot from before step 1


@pytest.mark.parametrize("strategy", ["joint", "alternate", "proportional", "temperature"])
def test_epoch_plans_cover_the_data(strategy):
    y = {"a": np.array([0, 1, -1, 0, 1, 0, 1, -1, 0, 1]), "b": np.array([-1, -1, 0, 1, 0, 1, 0, 1, 0, 1])}
    plan = epoch_plan(y, 3, strategy, np.random.default_rng(0))
    if strategy == "joint":
        assert sorted(np.concatenate([b for _, b in plan]).tolist()) == list(range(10))
        assert all(t == ("a", "b") for t, _ in plan)
    else:
        assert all(len(t) == 1 for t, _ in plan)
        for task in y:
            batches = [b for t, b in plan if t == (task,)]
            assert all((y[task][b] >= 0).all() for b in batches)
    if strategy in ("alternate", "proportional"):
        for task in y:
            got = sorted(np.concatenate([b for t, b in plan if t == (task,)]).tolist())
            assert got == np.flatnonzero(y[task] >= 0).tolist()
    if strategy == "alternate":
        assert [t for t, _ in plan[:4]] == [("a",), ("b",), ("a",), ("b",)]


def test_temperature_flattens_task_mix():
    y = {"big": np.zeros(900, dtype=int), "small": np.zeros(100, dtype=int)}
    share = {}
    for temp in (1.0, 100.0):
        plan = epoch_plan(y, 10, "temperature", np.random.default_rng(0), temperature=temp)
        share[temp] = sum(t == ("small",) for t, _ in plan) / len(plan)
    assert share[1.0] < 0.2 and share[100.0] > 0.4


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("epochs", -1),
        ("batch_size", 0),
        ("lr_encoder", 0.0),
        ("lr_heads", -1e-3),
        ("lr_heads", float("nan")),
        ("epochs", 2.5),
        ("task_sampling", "random"),
        ("device", "tpu"),
    ],
)
def test_bad_training_options(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_losses_read_every_n_steps_are_the_means_and_change_no_weight(tiny_bert, toy_data):
    """log_every N: one step event per N steps (and one for the rest of an epoch), with the mean losses
    of its steps; the training itself is the same, bit for bit."""
    runs = {}
    for n in (1, 4):
        model = new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert), device="cpu", seed=0)
        config = TrainConfig(epochs=2, batch_size=4, log_every=n, lr_encoder=1e-3)
        events = [e for e in train(model, toy_data, toy_data, config) if e["type"] in ("step", "eval")]
        runs[n] = (events, {k: v.clone() for k, v in model.state_dict().items()})
    (every, weights1), (fours, weights4) = runs[1], runs[4]
    assert all(torch.equal(weights1[k], weights4[k]) for k in weights1)
    steps1 = [e for e in every if e["type"] == "step"]
    per_epoch = len(steps1) // 2  # 9 steps an epoch: reports at every 4th step, and at the end of each epoch
    assert [e["step"] for e in fours if e["type"] == "step"] == [4, 8, 9, 12, 16, 18] and per_epoch == 9
    assert [e["type"] for e in fours].count("eval") == 2 and fours[3]["type"] == "eval"  # after the epoch's last report
    for e in (e for e in fours if e["type"] == "step"):
        covered = steps1[e["step"] - e["steps"] : e["step"]]
        assert e["loss"] == pytest.approx(np.mean([c["loss"] for c in covered]), rel=1e-5)
        assert e["losses"]["topic"] == pytest.approx(np.mean([c["losses"]["topic"] for c in covered]), rel=1e-5)


def test_evaluations_come_every_eval_every_steps_whatever_log_every(tiny_model, toy_data):
    config = TrainConfig(epochs=2, batch_size=4, log_every=7, eval_every=5)
    events = [e for e in train(tiny_model, toy_data, toy_data, config) if e["type"] in ("step", "eval")]
    evals = [e["step"] for e in events if e["type"] == "eval"]
    assert [s for s in evals if s % 5 == 0][:3] == [5, 10, 15]  # and one at the end of each epoch
    before_eval = [events[i - 1] for i, e in enumerate(events) if e["type"] == "eval" and e["step"] == 5]
    assert before_eval[0]["type"] == "step" and before_eval[0]["step"] == 5  # steps 1-5 reported first


def test_a_non_finite_loss_found_at_a_report_rolls_back_to_verified_weights(tiny_model, toy_data):
    events, good = poisoned_run(tiny_model, toy_data, 3, log_every=3)
    assert events[-2]["type"] == "error" and "the loss became nan" in events[-2]["message"]
    assert "at step 6" in events[-2]["message"] and events[-1]["failed"]  # found at the next report
    for n, p in tiny_model.heads.named_parameters():
        assert torch.equal(p, good[n])  # the copy from before step 1: the last one verified


def test_uncertainty_weighting_learns_task_weights(tiny_model, toy_data):
    config = TrainConfig(epochs=3, batch_size=6, loss_weighting="uncertainty", lr_heads=5e-2)
    steps = [e for e in train(tiny_model, toy_data, None, config) if e["type"] == "step"]
    first = steps[0]
    assert first["task_weights"] == {"topic": 1.0, "sentiment": 1.0}  # s_i start at 0
    assert first["loss"] == pytest.approx(sum(first["losses"].values()), rel=1e-6)
    last = steps[-1]["task_weights"]
    assert all(w != 1.0 for w in last.values())
    # the identity behind the weights: loss = sum(w_i * L_i - log w_i)
    expected = sum(last[t] * v - np.log(last[t]) for t, v in steps[-1]["losses"].items())
    assert steps[-1]["loss"] == pytest.approx(expected, rel=1e-3)


def test_frozen_layers_stay_in_eval_mode_when_predicting_between_steps(tiny_model, toy_data):
    """The app predicts with a model between its training steps; predict restores train mode on every
    module, and the next step must still run the frozen layers without dropout."""
    from mtl.encoder import hf_model

    layers = hf_model(tiny_model.encoder).encoder.layer
    seen = {0: [], 1: []}
    for i in seen:
        layers[i].register_forward_pre_hook(lambda m, args, i=i: seen[i].append(m.training))
    config = TrainConfig(epochs=2, batch_size=4, freeze="bottom:1", cache=False)
    for e in train(tiny_model, toy_data, None, config):
        if e["type"] == "step":
            before = len(seen[0])
            tiny_model.predict(["a sentence between steps"])
            del seen[0][before:], seen[1][before:]  # keep the training forwards only
    assert seen[0] and not any(seen[0])  # frozen: eval mode at every training step
    assert all(seen[1])  # trainable: train mode


def test_one_loss_for_every_runner():
    """task_loss_sums over the labelled rows, divided by their count, is the masked mean cross-entropy (to the
    bit), and total_loss adds the uncertainty term s_i once per batch."""
    import torch.nn.functional as F

    from mtl.losses import task_loss_sums, total_loss

    torch.manual_seed(0)
    logits = {"a": torch.randn(6, 3), "b": torch.randn(6, 2)}
    labels = {"a": torch.tensor([0, 2, -1, 1, 1, -1]), "b": torch.tensor([-1, -1, 1, 0, -1, -1])}
    sums = task_loss_sums(logits, labels)
    for t, y in labels.items():
        mask = y >= 0
        assert torch.equal(sums[t] * 1 / int(mask.sum()), F.cross_entropy(logits[t][mask], y[mask]))
    log_vars = {"a": torch.tensor(0.5), "b": torch.tensor(-0.25)}
    weighted = sum(torch.exp(-log_vars[t]) * v for t, v in sums.items())
    assert torch.allclose(total_loss(sums, log_vars, regularise=False), weighted)
    assert torch.allclose(total_loss(sums, log_vars), weighted + 0.25)
    assert torch.equal(total_loss(sums), sums["a"] + sums["b"])


def test_the_loop_does_not_import_the_distributed_runner_and_model_does_not_import_checkpoint():
    import os
    import subprocess
    import sys

    code = (
        "import sys, mtl.model; assert 'mtl.checkpoint' not in sys.modules, 'model imports checkpoint'; "
        "import mtl.train; assert 'mtl.distributed' not in sys.modules, 'train imports distributed'"
    )
    from conftest import REPO

    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="torch.compile on a CPU needs a C compiler")
def test_compile_trains_like_eager_and_leaves_the_model_as_it_was(tiny_bert, toy_data):
    """--compile: the same losses as eager (dropout off: compiled dropout draws other numbers), the frozen
    layers recomputed rather than cached, and afterwards the encoder's own forward again."""
    runs = {}
    for compile_ in (False, True):
        model = new_model(toy_data.tasks, ModelConfig(base_model=tiny_bert, dropout=0.0), device="cpu", seed=0)
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        config = TrainConfig(epochs=1, batch_size=8, freeze="bottom:1", compile=compile_, lr_encoder=1e-3)
        events = list(train(model, toy_data, None, config))
        runs[compile_] = [e["loss"] for e in events if e["type"] == "step"], [e["type"] for e in events]
        assert "forward" not in vars(hf_model(model.encoder))  # the class's forward, not a compiled one
    (eager, eager_kinds), (compiled, kinds) = runs[False], runs[True]
    assert "cache" in eager_kinds and "cache" not in kinds
    assert compiled == pytest.approx(eager, abs=1e-4)
