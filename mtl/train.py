"""The training loop, as a generator of events: the CLI wraps it in tqdm, the app plots it live.

Events are dicts with a "type":
  start  {frozen, params, steps, epochs, examples}
  cache  {used, mode, layers, bytes, seconds} or {used: False, message}   (frozen-part outputs, mtl/cache.py)
  step   {step, epoch, tasks, loss, losses, task_weights, lr_encoder, lr_heads, examples_per_sec, progress}
  eval   {step, epoch, metrics (per task: accuracy, macro_f1, loss, n), score, best}
  error  {step, message}      (a non-finite loss: the run stops and the last good weights are kept)
  done   {best_metrics, best_score, checkpoint, stopped, failed, steps, seconds, eval_only}
         (eval_only: nothing was trainable, so no step and no checkpoint; then also a message)

Where the work runs is a runner object: LocalRunner (below) runs it in this process; mtl/distributed.py's
AccelerateRunner runs the same loop on several processes (torchrun / accelerate launch), each on its share
of every batch, all yielding the same events; only the main process writes the checkpoint.
"""

import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch

from .batches import place
from .cache import BatchForward, build_caches, head_probs
from .checkpoint import check_save_target, round_weights, save_checkpoint
from .config import TrainConfig
from .encoder import hf_model
from .errors import DataError
from .evaluate import evaluate, score, summary
from .freeze import apply_freeze, parameter_counts, parse_freeze
from .io import atomic_directory
from .losses import task_loss_sums, total_loss, uncertainty_log_vars
from .sampling import epoch_plan, register_rows
from .train_step import TrainStep


def eval_batch(device) -> int:
    """Sentences per evaluation pass: no gradients are kept, so a GPU takes a larger batch than training."""
    return 256 if device.type == "cuda" else 64


SNAPSHOT_EVERY = 50  # steps between copies of the weights that a non-finite loss rolls back to


class LocalRunner:
    """Runs the loop in this process. grad_accum > 1 splits each batch into that many micro-batches whose
    gradients add up to the whole batch's: the same update with 1/N of the activation memory.

    The loop calls: place, prepare, stopped, forward_backward, clip_grad_norm_, val_probs, save, wait.
    AccelerateRunner (mtl/distributed.py) overrides those, and the hooks no_sync, backward, sum_over_processes and
    sync_log_vars that forward_backward uses, to run the same steps on its share of each batch."""

    rank, world, is_main = 0, 1, True

    def __init__(self, grad_accum: int = 1):
        self.micro_batches, self.optimizer = grad_accum, None

    def place(self, model) -> None:
        """Put the model where this process computes (one process: where it already is)."""

    def prepare(self, model, optimizer, texts, cache, label_ids, task_sampling):
        """(forward module, optimizer) for the training steps."""
        self.optimizer = optimizer
        return BatchForward(model, texts, cache), optimizer

    def stopped(self, stop) -> bool:
        return stop is not None and stop.is_set()

    def forward_backward(self, forward, label_ids, idx, tasks, log_vars, autocast):
        """Gradients of the loss of batch `idx` (this process's share, in micro-batches).
        Returns (loss, {task: loss}) of the whole batch, the same in every process."""
        device = next(forward.parameters()).device
        counts = {t: int((label_ids[t][idx] >= 0).sum()) for t in tasks}
        live = [t for t in tasks if counts[t]]  # a task with no label in the batch has no loss
        parts = np.array_split(idx[self.rank :: self.world], self.micro_batches)
        sums = torch.zeros(len(live), device=device)
        self.optimizer.zero_grad(set_to_none=True)
        for m, part in enumerate(parts):
            weight = 1.0
            if len(part) == 0:  # fewer sentences than processes x micro-batches: a weight-0 pass keeps DDP in step
                part, weight = idx[:1], 0.0
            with self.no_sync(forward, last=m == len(parts) - 1):
                with autocast():
                    logits = forward(part, tasks)
                labels = {t: place(torch.from_numpy(label_ids[t][part]), device) for t in live}
                part_sums = task_loss_sums(logits, labels)
                # this part's share of each task's batch mean; x world because DDP averages the processes
                shares = {t: part_sums[t] * weight * self.world / counts[t] for t in live}
                self.backward(total_loss(shares, log_vars, regularise=m == 0))
                for i, t in enumerate(live):
                    sums[i] += part_sums[t].detach() * weight
        self.sync_log_vars(log_vars)
        totals = self.sum_over_processes(sums)
        losses = {t: totals[i] / counts[t] for i, t in enumerate(live)}
        detached = {t: log_vars[t].detach() for t in live} if log_vars else None
        return total_loss(losses, detached), losses

    def clip_grad_norm_(self, params, max_norm) -> None:
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    def val_probs(self, model, texts) -> dict | None:
        """{task: (N, labels)} for the validation texts, or None: evaluate() then predicts them itself."""
        return None

    def save(self, model, directory, config, frozen, metrics=None) -> str:
        """The checkpoint, written into a new folder that then replaces `directory` whole."""
        with atomic_directory(directory) as tmp:
            save_checkpoint(model, tmp, config, frozen, metrics, dtype=config.save_dtype)
        return str(Path(directory))

    def wait(self) -> None:
        """Until every process is here (one process: at once)."""

    # hooks of forward_backward
    def no_sync(self, forward, last: bool):
        return nullcontext()

    def backward(self, loss) -> None:
        loss.backward()

    def sum_over_processes(self, tensor):
        return tensor

    def sync_log_vars(self, log_vars) -> None:
        pass


def label_matrix(model, data) -> dict[str, np.ndarray]:
    """{task: label index per sentence in the model's label order, -1 = unlabelled}."""
    for task in data.labels:
        if task not in model.tasks:
            raise DataError(f"the data has a task {task!r} that the model does not ({', '.join(model.tasks)})")
    return {task: np.array(data.label_ids(task, model.tasks[task])) for task in data.labels}


def make_optimizer(model, config: TrainConfig, tasks):
    """(AdamW over trainable parameters only, no weight decay on biases and LayerNorm weights; the learnable
    task weights of uncertainty weighting, or None). (None, None) when nothing is trainable."""
    groups = []
    for part, lr in ((model.encoder, config.lr_encoder), (model.heads, config.lr_heads)):
        params = [p for p in part.parameters() if p.requires_grad]
        decay, no_decay = [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]
        for group, weight_decay in ((decay, config.weight_decay), (no_decay, 0.0)):
            if group:
                groups.append({"params": group, "lr": lr, "weight_decay": weight_decay})
    if not groups:
        return None, None
    optimizer = torch.optim.AdamW(groups, fused=model.device.type == "cuda")  # fused: one kernel per step
    log_vars = None
    if config.loss_weighting == "uncertainty":
        log_vars = uncertainty_log_vars(tasks, model.device)
        optimizer.add_param_group({"params": list(log_vars.values()), "lr": config.lr_heads, "weight_decay": 0.0})
    return optimizer, log_vars


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _restore(model, snapshot):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, value in snapshot.items():
            params[n].copy_(value)


class BestSoFar:
    """The best validation score so far, its metrics, a copy of its weights and, given a save function,
    its checkpoint; and how many evaluations have passed without a better one."""

    def __init__(self, model, save=None):
        self.model, self.save = model, save
        self.score, self.metrics, self.weights, self.checkpoint, self.evals_since = -math.inf, None, None, None, 0

    def update(self, ev: dict) -> dict:
        ev["best"] = ev["score"] > self.score
        if not ev["best"]:
            self.evals_since += 1
            return ev
        if self.save is not None:  # save first: saving rounds the weights that the copy below keeps
            self.checkpoint = self.save({"validation": ev["metrics"]})
        self.score, self.metrics, self.weights, self.evals_since = ev["score"], ev["metrics"], _snapshot(self.model), 0
        return ev


def validate(model, val_data, val_cache, runner, step, epoch) -> dict:
    """The eval event for the validation data now (cached embeddings where there are some)."""
    probs = head_probs(model, val_cache) if val_cache is not None else runner.val_probs(model, val_data.texts)
    metrics = evaluate(model, val_data, eval_batch(model.device), probs=probs)
    return {"type": "eval", "step": step, "epoch": epoch, "metrics": summary(metrics), "score": score(metrics)}


def evaluate_only(model, val_data, runner, started: float):
    """Every component is frozen: evaluate (when there is validation data) instead of a pointless loop."""
    done = {"type": "done", "eval_only": True, "stopped": False, "failed": False, "steps": 0, "checkpoint": None}
    done["message"] = "every component is frozen, so there is nothing to train: evaluation only"
    if val_data is not None:
        ev = validate(model, val_data, None, runner, 0, 0)
        ev["best"] = True
        yield ev
        done.update(best_metrics=ev["metrics"], best_score=ev["score"])
    yield {**done, "seconds": time.perf_counter() - started}


def train(model, train_data, val_data=None, config=None, stop=None, output_dir=None, runner=None):
    """Train `model` in place, yielding events (see the top of this file).

    stop: anything with is_set() (a threading.Event); the run ends before the next step.
    output_dir: the run leaves a checkpoint there: the best state when there is validation data, else the
    final one (none when nothing was trainable).
    runner: where the work runs; by default LocalRunner(config.grad_accum), this process (for several:
    mtl.distributed.AccelerateRunner)."""
    config = config or TrainConfig()
    runner = runner or LocalRunner(config.grad_accum)
    started = time.perf_counter()
    runner.place(model)
    frozen = parse_freeze(config.freeze, model)
    apply_freeze(model, frozen)
    if output_dir is not None:
        check_save_target(output_dir)
    if config.register_sampling != "proportional" and train_data.groups is None:
        raise DataError("register sampling needs a register column in the training data")
    if config.head_init == "labels":
        model.init_heads_from_labels()
    y = label_matrix(model, train_data)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed + runner.rank)  # the seed itself in one process; each process its own dropout
    total_steps = config.epochs * len(_epoch(y, config, np.random.default_rng(0)))
    yield _start_event(model, frozen, total_steps, config, train_data)

    optimizer, log_vars = make_optimizer(model, config, y)
    if optimizer is None:
        yield from evaluate_only(model, val_data, runner, started)
        return
    cache, val_cache = None, None
    if config.cache and not config.compile:  # replaying cached layers would recompile at every batch
        val_texts = val_data.texts if val_data is not None else None
        cache, val_cache, event = build_caches(model, frozen, train_data.texts, val_texts)
        if event:
            yield event
    train_step = TrainStep(model, config, runner, optimizer, log_vars, frozen, train_data, cache, y, total_steps)
    save = None if output_dir is None else lambda metrics: _save(model, runner, output_dir, config, frozen, metrics)
    best = BestSoFar(model, save)
    with compiled_encoder(model, config.compile):
        outcome = yield from _steps(train_step, train_data, val_data, y, rng, stop, best, val_cache)
    if best.weights is not None:
        _restore(model, best.weights)
    elif save is not None:  # no validation data, or no score better than nothing: keep the final weights
        best.checkpoint = save(None)
    runner.wait()  # every process reports done once the checkpoint is written
    model.zero_grad(set_to_none=True)  # the last step's gradients: as large as the trained weights
    model.eval()
    yield _done_event(best, *outcome, started)


def _steps(train_step, train_data, val_data, y, rng, stop, best, val_cache):
    """The epochs: steps, reports, evaluations; returns (stopped, failed, steps done)."""
    model, config, runner = train_step.model, train_step.config, train_step.runner
    lengths = np.array([len(t) for t in train_data.texts])  # characters: a cheap proxy for tokens
    last_good, verified_at = _snapshot(model), 0  # weights every loss up to verified_at was finite for
    step, stopped, failed = 0, False, False

    for epoch in range(1, config.epochs + 1):
        for tasks, idx in _epoch(y, config, rng, lengths, train_data.groups):
            if runner.stopped(stop):
                stopped = True
                break
            event = train_step(tasks, idx, step, epoch)
            if event is not None and event["type"] == "error":  # roll back to the last good copy and stop
                _restore(model, last_good)
                failed = True
                yield event
                break
            step += 1
            if event is not None:  # a report: every loss so far was finite
                if step - verified_at >= SNAPSHOT_EVERY:
                    last_good, verified_at = _snapshot(model), step
                yield event
            if config.eval_every and val_data is not None and step % config.eval_every == 0:
                if failed := (yield from _flushed(train_step, step, epoch, last_good)):
                    break
                yield best.update(validate(model, val_data, val_cache, runner, step, epoch))
        if not failed:
            failed = yield from _flushed(train_step, step, epoch, last_good)
        if stopped or failed:
            break
        if val_data is not None:
            yield best.update(validate(model, val_data, val_cache, runner, step, epoch))
            if config.patience and best.evals_since >= config.patience:
                break

    if stopped and val_data is not None and step > 0:  # the stopped weights may still be the best
        yield best.update(validate(model, val_data, val_cache, runner, step, epoch))
    return stopped, failed, step


def _flushed(train_step, step, epoch, last_good):
    """Yield the report of steps not reported yet, if any; True when it found a non-finite loss (then
    the weights go back to `last_good`)."""
    event = train_step.flush(step, epoch)
    if event is None:
        return False
    if event["type"] == "error":
        _restore(train_step.model, last_good)
    yield event
    return event["type"] == "error"


def _epoch(label_ids, config, rng, lengths=None, groups=None) -> list[tuple]:
    rows = None
    if groups is not None and config.register_sampling == "temperature":
        rows = register_rows(groups, config.register_temperature, rng)
    return epoch_plan(label_ids, config.batch_size, config.task_sampling, rng, config.temperature, lengths, rows)


def _save(model, runner, output_dir, config, frozen, metrics) -> str:
    round_weights(model, config.save_dtype)  # in every process: the weights in memory become the saved ones
    return runner.save(model, output_dir, config, frozen, metrics)


def _start_event(model, frozen, total_steps, config, train_data) -> dict:
    return {
        "type": "start",
        "frozen": sorted(frozen),
        "params": parameter_counts(model),
        "steps": total_steps,
        "epochs": config.epochs,
        "examples": len(train_data),
    }


@contextmanager
def compiled_encoder(model, enabled: bool):
    """With `enabled`, the encoder's transformer runs torch.compile'd (dynamic shapes) inside the block,
    and as it was after it. sentence-transformers calls the model's forward method directly, so that is
    what is compiled (names of parameters, hence checkpoints, do not change)."""
    if not enabled:
        yield
        return
    hf = hf_model(model.encoder)
    hf.forward = torch.compile(hf.forward, dynamic=True)
    try:
        yield
    finally:
        del hf.forward  # back to the class's forward


def _done_event(best, stopped, failed, steps, started) -> dict:
    return {
        "type": "done",
        "best_metrics": best.metrics,
        "best_score": None if best.metrics is None else best.score,
        "checkpoint": best.checkpoint,
        "stopped": stopped,
        "failed": failed,
        "steps": steps,
        "seconds": time.perf_counter() - started,
        "eval_only": False,
    }
