"""Scale-out: the training loop of mtl/train.py on several processes or machines, through Hugging Face Accelerate.

Launched with `torchrun` or `accelerate launch`, every process runs the same `train()` generator with the
same seed and an AccelerateRunner, so every process builds the same epoch plan (task mixing included). Each
batch of the plan is split across the processes (`idx[rank::world]`), so the global batch is still
--batch-size. Each process scales its loss so that DDP's gradient averaging gives exactly the gradient of the
single-process loss (the per-task mean over the whole batch); `grad_accum` further splits a process's share
into micro-batches, again with the same update. Validation is sharded the same way and the probabilities are
gathered before metrics are computed, so every process reports (and selects the best epoch on) the same
numbers. Every process rounds its weights as the save does (train.py calls checkpoint.round_weights); only
the main process writes the checkpoint.

Without a launcher nothing here is used: `train()` runs with its LocalRunner (the app and `python -m mtl train`).
"""

import math
import os
from contextlib import nullcontext
from pathlib import Path

import torch

from .config import MIXED_PRECISION
from .device import resolve_device
from .errors import ConfigError
from .train import LocalRunner, eval_batch


def launched_world_size() -> int:
    """Processes in this run, as torchrun / accelerate launch / mpirun announce it (1 when not launched)."""
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def wants_accelerator(mixed_precision: str | None = None) -> bool:
    """Accelerate is used when launched as several processes, or for mixed precision through it
    (--mixed-precision, or `accelerate launch --mixed_precision`). Otherwise the plain loop runs."""
    if launched_world_size() > 1:
        return True
    if mixed_precision not in (None, "no"):
        return True
    return os.environ.get("ACCELERATE_MIXED_PRECISION", "no") not in ("", "no")


def make_accelerator(device: str = "auto", mixed_precision: str | None = None):
    """An accelerate.Accelerator for this process: gloo on CPUs, NCCL on CUDA GPUs (one per process)."""
    try:
        from accelerate import Accelerator, DistributedDataParallelKwargs
    except ImportError:
        raise ConfigError("distributed training needs the accelerate package: pip install accelerate") from None
    if mixed_precision is not None and mixed_precision not in MIXED_PRECISION:
        raise ConfigError(f"mixed precision must be one of {', '.join(MIXED_PRECISION)}; got {mixed_precision!r}")
    dev = resolve_device(device)  # an unavailable --device is an error here too
    if mixed_precision == "fp16" and dev.type == "cpu":
        raise ConfigError("fp16 mixed precision needs a GPU; on the CPU use --mixed-precision bf16")
    # find_unused_parameters: set per run by AccelerateRunner.prepare (only needed when a head can sit out a step)
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    try:
        acc = Accelerator(cpu=dev.type == "cpu", mixed_precision=mixed_precision, kwargs_handlers=[ddp])
    except (ValueError, RuntimeError) as e:
        raise ConfigError(f"Accelerate could not start: {e}") from None
    world = launched_world_size()
    if world > 1 and acc.num_processes != world:
        raise ConfigError(
            f"launched as {world} processes, but Accelerate joined {acc.num_processes} on device {acc.device} "
            "(several processes need one CUDA GPU each, or --device cpu)"
        )
    return acc


def interleave(gathered: torch.Tensor, world: int, n: int) -> torch.Tensor:
    """Rows gathered from `world` processes, each padded to ceil(n / world) rows of items rank, rank + world, ...,
    back into the original order 0..n-1."""
    per = gathered.shape[0] // world
    return gathered.reshape(world, per, *gathered.shape[1:]).transpose(0, 1).reshape(world * per, -1)[:n]


class AccelerateRunner(LocalRunner):
    """This process's part of a run on several processes (or one, with Accelerate's mixed precision): the
    steps of LocalRunner on this process's share of every batch, with DDP averaging the gradients."""

    def __init__(self, accelerator, grad_accum: int = 1):
        super().__init__(grad_accum)
        self.acc = accelerator
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.is_main = accelerator.is_main_process

    def place(self, model) -> None:
        model.to(self.acc.device)

    def prepare(self, model, optimizer, texts, cache, label_ids, task_sampling):
        """The forward module wrapped in DDP and Accelerate's optimizer (mixed precision)."""
        forward, optimizer = super().prepare(model, optimizer, texts, cache, label_ids, task_sampling)
        # a head sits out a step when batches train one task, or a batch has no label for a task: DDP must
        # then look for unused parameters (an extra graph walk per step, and a warning when there are none)
        partial = set(label_ids) != set(model.tasks) or any((v < 0).any() for v in label_ids.values())
        idle_heads = task_sampling != "joint" or partial
        if getattr(self.acc, "ddp_handler", None) is not None:
            self.acc.ddp_handler.find_unused_parameters = bool(idle_heads)
        forward, self.optimizer = self.acc.prepare(forward, optimizer)
        return forward, self.optimizer

    def stopped(self, stop) -> bool:
        """The stop switch; set on any process, it stops all of them at the same step."""
        local = super().stopped(stop)
        if self.world == 1:
            return local
        return bool(self.sum_over_processes(torch.tensor([float(local)], device=self.acc.device)).item() > 0)

    def no_sync(self, forward, last: bool):
        return nullcontext() if last else self.acc.no_sync(forward)  # gradients are averaged once, at the last

    def backward(self, loss) -> None:
        self.acc.backward(loss)  # scales fp16 losses

    def sum_over_processes(self, tensor):
        return tensor if self.world == 1 else self.acc.reduce(tensor, "sum")

    def sync_log_vars(self, log_vars) -> None:
        """The learned task weights are not part of the DDP module: average their gradients here."""
        if log_vars and self.world > 1:
            for v in log_vars.values():
                if v.grad is not None:
                    v.grad = self.acc.reduce(v.grad, "mean")

    def clip_grad_norm_(self, params, max_norm) -> None:
        self.acc.clip_grad_norm_(params, max_norm)  # unscales fp16 gradients first

    def val_probs(self, model, texts) -> dict | None:
        """{task: (N, labels)} for the validation texts, each process predicting its share, gathered in order.
        None with one process (evaluate() then predicts all itself)."""
        if self.world == 1:
            return None
        share = texts[self.rank :: self.world]
        per = math.ceil(len(texts) / self.world)
        local = (
            model.predict_proba(share, eval_batch(model.device))
            if share
            else {t: torch.zeros(0, len(v)) for t, v in model.tasks.items()}
        )
        padded = {}
        for t, p in local.items():
            padded[t] = torch.zeros(per, p.shape[1], device=self.acc.device)
            padded[t][: len(p)] = p.to(self.acc.device)
        gathered = self.acc.gather(padded)
        return {t: interleave(g.cpu(), self.world, len(texts)) for t, g in gathered.items()}

    def save(self, model, directory, config, frozen, metrics=None) -> str:
        """The main process writes the checkpoint; the others only report where it is."""
        if self.is_main:
            return super().save(model, directory, config, frozen, metrics)
        return str(Path(directory))

    def wait(self) -> None:
        if self.world > 1:
            self.acc.wait_for_everyone()
