"""Scale-out: the training loop of mtl/train.py on several processes or machines, through Hugging Face Accelerate.

Launched with `torchrun` or `accelerate launch`, every process runs the same `train()` generator with the
same seed, so every process builds the same epoch plan (task mixing included). Each batch of the plan is
split across the processes (`idx[rank::world]`), so the global batch is still --batch-size. Each process
scales its loss so that DDP's gradient averaging gives exactly the gradient of the single-process loss
(the per-task mean over the whole batch); `grad_accum` further splits a process's share into micro-batches,
again with the same update. Validation is sharded the same way and the probabilities are gathered before
metrics are computed, so every process reports (and selects the best epoch on) the same numbers. Only the
main process writes checkpoints; the others apply the same in-memory rounding a half-precision save does.

Without a launcher nothing here is used: `train()` runs as it always has (the app and `python -m mtl train`).

Also here: Hugging Face `datasets` as training data (`hf:NAME[:SPLIT]` or a folder written by save_to_disk).
"""

import contextlib
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cache import cached_logits
from .checkpoint import SAVE_DTYPES, save_checkpoint
from .data import Dataset, load_labelled
from .device import resolve_device
from .encoder import hf_model
from .errors import ConfigError, DataError
from .losses import total_loss

MIXED_PRECISION = ("no", "bf16", "fp16")


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
    # find_unused_parameters: set per run by Sharding.prepare (only needed when a head can sit out a step)
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


class BatchForward(nn.Module):
    """One training batch's forward pass (cached or not) as a module, so DDP sees every path through it."""

    def __init__(self, model, texts, cache):
        super().__init__()
        self.model, self.texts, self.cache = model, texts, cache

    def forward(self, idx, tasks):
        return cached_logits(self.model, self.texts, idx, tasks, self.cache)


def round_like_save(model, save_dtype: str) -> None:
    """What save_checkpoint does to the weights in memory, for the processes that do not write."""
    params = dict(hf_model(model.encoder).named_parameters())
    with torch.no_grad():
        for n in model.trained_params:
            params[n].copy_(params[n].to(SAVE_DTYPES[save_dtype]))


def interleave(gathered: torch.Tensor, world: int, n: int) -> torch.Tensor:
    """Rows gathered from `world` processes, each padded to ceil(n / world) rows of items rank, rank + world, ...,
    back into the original order 0..n-1."""
    per = gathered.shape[0] // world
    return gathered.reshape(world, per, *gathered.shape[1:]).transpose(0, 1).reshape(world * per, -1)[:n]


class Sharding:
    """This process's part of a run. With no accelerator and grad_accum 1 it is inactive, and train() runs
    its own single-process code unchanged."""

    def __init__(self, accelerator=None, grad_accum: int = 1):
        self.acc, self.micro_batches = accelerator, grad_accum
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.is_main = accelerator is None or accelerator.is_main_process
        self.optimizer = None

    @property
    def active(self) -> bool:
        return self.acc is not None or self.micro_batches > 1

    def place(self, model) -> None:
        if self.acc is not None:
            model.to(self.acc.device)

    def prepare(self, model, optimizer, texts, cache, y, task_sampling):
        """(forward module or None, optimizer): DDP-wrapped and Accelerate's optimizer (mixed precision)."""
        if not self.active:
            return None, optimizer
        forward = BatchForward(model, texts, cache)
        if self.acc is not None:
            # a head sits out a step when batches train one task, or a batch has no label for a task: DDP must
            # then look for unused parameters (an extra graph walk per step, and a warning when there are none)
            partial = set(y) != set(model.tasks) or any((v < 0).any() for v in y.values())
            idle_heads = task_sampling != "joint" or partial
            if getattr(self.acc, "ddp_handler", None) is not None:
                self.acc.ddp_handler.find_unused_parameters = bool(idle_heads)
            forward, optimizer = self.acc.prepare(forward, optimizer)
        self.optimizer = optimizer
        return forward, optimizer

    def _sum(self, tensor):
        return tensor if self.world == 1 else self.acc.reduce(tensor, "sum")

    def stopped(self, stop) -> bool:
        """The stop switch; with several processes, set on any of them stops all of them at the same step."""
        local = stop is not None and stop.is_set()
        if self.world == 1:
            return local
        return bool(self._sum(torch.tensor([float(local)], device=self.acc.device)).item() > 0)

    def forward_backward(self, forward, y, idx, tasks, log_vars, autocast):
        """Forward and backward of this process's share of batch `idx`, in `grad_accum` micro-batches.
        Returns (loss, {task: loss}) of the whole global batch, the same on every process."""
        device = next(forward.parameters()).device
        counts = {t: int((y[t][idx] >= 0).sum()) for t in tasks}
        live = [t for t in tasks if counts[t]]  # as in train(): a task with no label in the batch has no loss
        parts = np.array_split(idx[self.rank :: self.world], self.micro_batches)
        sums = torch.zeros(len(live), device=device)
        self.optimizer.zero_grad(set_to_none=True)
        for m, part in enumerate(parts):
            weight = 1.0
            if len(part) == 0:  # fewer sentences than processes x micro-batches: a weight-0 pass keeps DDP in step
                part, weight = idx[:1], 0.0
            last = m == len(parts) - 1
            sync = contextlib.nullcontext() if last or self.acc is None else self.acc.no_sync(forward)
            with sync:
                with autocast():
                    logits = forward(part, tasks)
                loss = torch.zeros((), device=device)
                for i, t in enumerate(live):
                    target = torch.as_tensor(y[t][part], device=device)
                    mask = target >= 0
                    s = F.cross_entropy(logits[t][mask].float(), target[mask], reduction="sum") * weight
                    sums[i] += s.detach()
                    # DDP averages over processes: x world, / global count = the single-process mean
                    scale = self.world / counts[t]
                    loss = loss + (torch.exp(-log_vars[t]) * s * scale if log_vars else s * scale)
                if log_vars and m == 0:
                    loss = loss + sum(log_vars[t] for t in live)
                if self.acc is not None:
                    self.acc.backward(loss)
                else:
                    loss.backward()
        if log_vars and self.world > 1:  # not part of the DDP module: average their gradients here
            for v in log_vars.values():
                if v.grad is not None:
                    v.grad = self.acc.reduce(v.grad, "mean")
        totals = self._sum(sums)
        losses = {t: totals[i] / counts[t] for i, t in enumerate(live)}
        detached = {t: log_vars[t].detach() for t in live} if log_vars else None
        return total_loss(losses, detached), losses

    def clip_grad_norm_(self, params, max_norm) -> None:
        if self.acc is not None:
            self.acc.clip_grad_norm_(params, max_norm)  # unscales fp16 gradients first
        else:
            torch.nn.utils.clip_grad_norm_(params, max_norm)

    def val_probs(self, model, texts) -> dict | None:
        """{task: (N, labels)} for the validation texts, each process predicting its share, gathered in order.
        None with one process (evaluate() then predicts all itself)."""
        if self.world == 1:
            return None
        share = texts[self.rank :: self.world]
        per = math.ceil(len(texts) / self.world)
        local = model.predict_proba(share) if share else {t: torch.zeros(0, len(v)) for t, v in model.tasks.items()}
        padded = {}
        for t, p in local.items():
            padded[t] = torch.zeros(per, p.shape[1], device=self.acc.device)
            padded[t][: len(p)] = p.to(self.acc.device)
        gathered = self.acc.gather(padded)
        return {t: interleave(g.cpu(), self.world, len(texts)) for t, g in gathered.items()}

    def save(self, model, output_dir, config, frozen, metrics=None) -> str:
        """save_checkpoint on the main process; the others round their weights the same way."""
        if self.is_main:
            return str(save_checkpoint(model, output_dir, config, frozen, metrics, dtype=config.save_dtype))
        round_like_save(model, config.save_dtype)
        return str(Path(output_dir))

    def wait(self) -> None:
        if self.world > 1:
            self.acc.wait_for_everyone()


# ---- Hugging Face datasets as training data ----------------------------------------------------------------


def _split_source(source: str):
    """(folder, split or None) for 'DIR' or 'DIR:SPLIT'; None when `source` is not a folder."""
    if Path(source).is_dir():
        return Path(source), None
    head, sep, split = source.rpartition(":")
    if sep and head and Path(head).is_dir() and split:
        return Path(head), split
    return None


def is_datasets_source(source) -> bool:
    """hf:NAME[:SPLIT], or a folder (written by datasets' save_to_disk), optionally DIR:SPLIT."""
    source = str(source)
    return source.startswith("hf:") or _split_source(source) is not None


def load_data(sources, text_column: str = "text", label_sets: dict | None = None, split: str = "train") -> Dataset:
    """CSV/JSONL files (mtl.data.load_labelled), or one Hugging Face dataset; `split` is the default split."""
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not any(is_datasets_source(s) for s in sources):
        return load_labelled(sources, text_column=text_column, label_sets=label_sets)
    if len(sources) > 1:
        raise DataError("give one Hugging Face dataset (hf:NAME[:SPLIT] or a datasets folder), or CSV/JSONL files")
    return load_hf_dataset(str(sources[0]), text_column, label_sets, split)


def _open_hf(source: str, split: str):
    """(dataset or iterable dataset, split used)."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{source}: reading Hugging Face datasets needs the `datasets` package (pip install datasets); "
            "CSV and JSONL files need nothing more"
        ) from None
    if source.startswith("hf:"):
        parts = source[3:].split(":")
        if not parts[0] or len(parts) > 3 or not all(parts):
            raise DataError(f"{source}: expected hf:NAME, hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT")
        name, config = parts[0], parts[1] if len(parts) == 3 else None
        split = parts[-1] if len(parts) > 1 else split
        try:  # streaming: rows are read as they come, only the text and label columns are kept
            return datasets.load_dataset(name, config, split=split, streaming=True), split
        except Exception as e:  # noqa: BLE001 - network, offline mode, unknown name or split: all one clear line
            flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
            offline = any(os.environ.get(v, "").lower() not in ("", "0", "false") for v in flags)
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"{source}: cannot load Hugging Face dataset {name!r} split {split!r}"
                + (" (offline: HF_HUB_OFFLINE is set)" if offline else "")
                + f": {why}. It needs internet access, or a local copy: "
                "datasets.load_dataset(...).save_to_disk(DIR), then pass DIR"
            ) from None
    folder, folder_split = _split_source(source)
    try:
        ds = datasets.load_from_disk(str(folder))
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{folder}: not a datasets folder (one written by save_to_disk): {e}") from None
    if isinstance(ds, datasets.DatasetDict):
        split = folder_split or split
        if split not in ds:
            raise DataError(f"{folder}: no split {split!r} (splits: {', '.join(ds)}); pass {folder}:SPLIT")
        ds = ds[split]
    return ds, split


def _label_columns(features, first: dict, text_column: str) -> dict:
    """{column: ClassLabel names or None} for the task columns: class labels, strings and booleans."""
    from datasets import ClassLabel, Value

    out = {}
    for name in first:
        if name == text_column:
            continue
        f = features.get(name) if features else None
        if isinstance(f, ClassLabel):
            out[name] = list(f.names)
        elif isinstance(f, Value) and f.dtype in ("string", "large_string", "bool"):
            out[name] = None
        elif f is None and all(v is None or isinstance(v, (str, bool)) for v in first[name]):
            out[name] = None
    return out


def load_hf_dataset(source: str, text_column="text", label_sets=None, split="train", batch_size=10_000) -> Dataset:
    """A Hugging Face dataset as a mtl Dataset: the text column plus one task per class-label, string or
    boolean column (missing labels: None, "" or -1). Checked like CSV files: the row and what is wrong."""
    ds, split = _open_hf(source, split)
    where = f"{source} ({split})"
    texts, per_task, tasks = [], {}, None
    row = 0
    for batch in ds.iter(batch_size=batch_size):
        if tasks is None:
            if text_column not in batch:
                raise DataError(f"{where}: no {text_column!r} column (columns are: {', '.join(batch)})")
            tasks = _label_columns(ds.features, batch, text_column)
            if not tasks:
                raise DataError(f"{where}: no label columns (class labels or strings) besides {text_column!r}")
            if label_sets:
                unknown = [t for t in tasks if t not in label_sets]
                if unknown:
                    known = ", ".join(label_sets)
                    raise DataError(f"{where}: column(s) {', '.join(unknown)} are not known tasks ({known})")
            per_task = {t: [] for t in tasks}
        for i, text in enumerate(batch[text_column]):
            row += 1
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: row {row}: empty text")
            labels = {}
            for t, names in tasks.items():
                v = batch[t][i]
                if names is not None:
                    v = names[v] if v is not None and v >= 0 else None
                elif isinstance(v, bool):
                    v = str(v).lower()
                elif v is not None:
                    v = v.strip() or None
                if v is not None and label_sets and v not in label_sets[t]:
                    raise DataError(
                        f"{where}: row {row}: label {v!r} is not in the label set of task {t!r} "
                        f"({', '.join(label_sets[t])})"
                    )
                labels[t] = v
            if all(v is None for v in labels.values()):
                raise DataError(f"{where}: row {row}: no label for any task ({', '.join(tasks)})")
            texts.append(text.strip())
            for t, v in labels.items():
                per_task[t].append(v)
    if not texts:
        raise DataError(f"{where}: no rows")
    sets = {}
    for t, names in tasks.items():
        if label_sets and t in label_sets:
            sets[t] = list(label_sets[t])
        else:
            sets[t] = names if names is not None else sorted({v for v in per_task[t] if v is not None})
        if len(sets[t]) < 2:
            raise DataError(f"{where}: task {t!r} has only {len(sets[t])} distinct label(s); a task needs 2 or more")
    return Dataset(texts, per_task, sets)
