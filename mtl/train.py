"""The training loop, as a generator of events: the CLI wraps it in tqdm, the app plots it live.

Events are dicts with a "type":
  start  {frozen, params, steps, epochs}
  cache  {used, mode, layers, bytes, seconds}   (frozen-part outputs computed once, see mtl/cache.py)
  step   {step, epoch, tasks, loss, losses, lr_encoder, lr_heads, examples_per_sec, progress}
  eval   {step, epoch, metrics (per task: accuracy, macro_f1, loss, n), score, best}
  error  {message}                      (e.g. a non-finite loss: the last good weights are kept)
  done   {best_metrics, best_score, checkpoint, stopped, steps, seconds, eval_only}

With an `accelerator` (torchrun / accelerate launch, see mtl/distributed.py) every process runs this
generator on its share of each batch and yields the same events; only the main process saves.
"""

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .cache import build_caches, cached_logits, head_probs
from .config import TrainConfig
from .distributed import Sharding
from .encoder import hf_model
from .errors import DataError
from .evaluate import evaluate, score, summary
from .freeze import apply_freeze, component_params, encoder_component, parameter_counts, parse_freeze
from .losses import total_loss
from .sampling import epoch_plan


def label_matrix(model, data) -> dict[str, np.ndarray]:
    """{task: label index per sentence in the model's label order, -1 = unlabelled}."""
    out = {}
    for task, column in data.labels.items():
        if task not in model.tasks:
            raise DataError(f"the data has a task {task!r} that the model does not ({', '.join(model.tasks)})")
        index = {lab: i for i, lab in enumerate(model.tasks[task])}
        bad = sorted({v for v in column if v is not None and v not in index})
        if bad:
            raise DataError(f"task {task!r}: label(s) {', '.join(map(repr, bad))} not in the model's labels")
        out[task] = np.array([index[v] if v is not None else -1 for v in column])
    return out


def set_train_mode(model, frozen: set[str]) -> None:
    """Train mode, except frozen parts, which run in eval mode (no dropout): they compute a fixed
    function, which is also what makes their output cacheable."""
    model.train()
    for name, module in hf_model(model.encoder).named_modules():
        if encoder_component(name + ".") in frozen - {"encoder.other", "pooler"}:
            module.eval()
    for task, head in model.heads.items():
        if f"head.{task}" in frozen:
            head.eval()


def modes_changed(modes: list[tuple]) -> bool:
    """True when something (a prediction between steps restores train mode everywhere) has changed a
    module's mode since set_train_mode; reading ~100 flags is far cheaper than setting them."""
    return any(m.training != want for m, want in modes)


def make_optimizer(model, config: TrainConfig):
    """AdamW over trainable parameters only; no weight decay on biases and LayerNorm weights."""
    groups = []
    for part, lr in ((model.encoder, config.lr_encoder), (model.heads, config.lr_heads)):
        params = [(n, p) for n, p in part.named_parameters() if p.requires_grad]
        decay = [p for n, p in params if p.ndim >= 2]
        no_decay = [p for n, p in params if p.ndim < 2]
        groups += [
            g
            for g in (
                {"params": decay, "lr": lr, "weight_decay": config.weight_decay},
                {"params": no_decay, "lr": lr, "weight_decay": 0.0},
            )
            if g["params"]
        ]
    return torch.optim.AdamW(groups) if groups else None


def warmup_linear(total_steps: int, warmup_ratio: float):
    warmup = int(total_steps * warmup_ratio)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _restore(model, snapshot):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, value in snapshot.items():
            params[n].copy_(value)


def train(
    model, train_data, val_data=None, config: TrainConfig | None = None, stop=None, output_dir=None, accelerator=None
):
    """Train `model` in place, yielding events. `stop` is anything with is_set() (threading.Event).
    `accelerator` (accelerate.Accelerator): this process is one of several, see mtl/distributed.py."""
    config = config or TrainConfig()
    t0 = time.perf_counter()
    dist = Sharding(accelerator, config.grad_accum)  # inactive (the plain loop) without accelerator or grad_accum
    dist.place(model)
    frozen = parse_freeze(config.freeze, model)
    apply_freeze(model, frozen)
    y = label_matrix(model, train_data)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed + dist.rank)  # the seed itself in one process; each process its own dropout
    steps_per_epoch = len(
        epoch_plan(y, config.batch_size, config.task_sampling, np.random.default_rng(0), config.temperature)
    )
    total_steps = steps_per_epoch * config.epochs
    counts = parameter_counts(model)
    yield {
        "type": "start",
        "frozen": sorted(frozen),
        "params": counts,
        "steps": total_steps,
        "epochs": config.epochs,
        "examples": len(train_data),
    }

    cache, val_cache = None, None

    def run_eval(step, epoch):
        probs = head_probs(model, val_cache) if val_cache is not None else dist.val_probs(model, val_data.texts)
        metrics = evaluate(model, val_data, probs=probs)
        return {"type": "eval", "step": step, "epoch": epoch, "metrics": summary(metrics), "score": score(metrics)}

    optimizer = make_optimizer(model, config)
    # Kendall, Gal & Cipolla (2018): loss = sum_i exp(-s_i) * L_i + s_i with a learnable s_i per task.
    log_vars = None
    if config.loss_weighting == "uncertainty" and optimizer is not None:
        log_vars = {t: torch.zeros((), device=model.device, requires_grad=True) for t in y}
        optimizer.add_param_group({"params": list(log_vars.values()), "lr": config.lr_heads, "weight_decay": 0.0})
    if optimizer is None:  # nothing trainable: evaluation only, no pointless loop
        done = {
            "type": "done",
            "eval_only": True,
            "stopped": False,
            "steps": 0,
            "checkpoint": None,
            "message": "every component is frozen, so there is nothing to train: evaluation only",
        }
        if val_data is not None:
            ev = run_eval(0, 0)
            ev["best"] = True
            yield ev
            done.update(best_metrics=ev["metrics"], best_score=ev["score"])
        done["seconds"] = time.perf_counter() - t0
        yield done
        return

    if config.cache:
        val_texts = val_data.texts if val_data is not None else None
        cache, val_cache, event = build_caches(model, frozen, train_data.texts, val_texts)
        if event:
            yield event
    device_type = model.device.type
    autocast = lambda: torch.autocast(device_type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    lr_factor = warmup_linear(total_steps, config.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    forward, optimizer = dist.prepare(model, optimizer, train_data.texts, cache, y, config.task_sampling)
    trainable = [p for p in model.parameters() if p.requires_grad]
    encoder_trainable = [
        (n, p)
        for c, ps in component_params(model).items()
        if not c.startswith("head.")
        for n, p in ps
        if p.requires_grad
    ]
    lengths = np.array([len(t) for t in train_data.texts])  # characters: a cheap proxy for tokens
    best_score, best_metrics, best_state, checkpoint = -math.inf, None, None, None
    last_good = _snapshot(model)
    step, stopped, failed, evals_since_best = 0, False, False, 0
    set_train_mode(model, frozen)
    modes = [(m, m.training) for m in model.modules()]

    def after_eval(ev):
        nonlocal best_score, best_metrics, best_state, checkpoint, evals_since_best
        ev["best"] = ev["score"] > best_score
        if ev["best"]:
            if output_dir is not None:  # save first: a half-precision save rounds the weights it stores
                checkpoint = dist.save(model, output_dir, config, frozen, {"validation": ev["metrics"]})
            best_score, best_metrics, best_state = ev["score"], ev["metrics"], _snapshot(model)
            evals_since_best = 0
        else:
            evals_since_best += 1
        return ev

    for epoch in range(1, config.epochs + 1):
        plan = epoch_plan(y, config.batch_size, config.task_sampling, rng, config.temperature, lengths)
        for tasks, idx in plan:
            if dist.stopped(stop):
                stopped = True
                break
            ts = time.perf_counter()
            if modes_changed(modes):
                set_train_mode(model, frozen)
            if forward is not None:  # this process's share of the batch, forward and backward (mtl/distributed.py)
                loss, losses = dist.forward_backward(forward, y, idx, tasks, log_vars, autocast)
            else:
                with autocast():
                    logits = cached_logits(model, train_data.texts, idx, tasks, cache)
                losses = {}
                for t in tasks:
                    target = torch.as_tensor(y[t][idx], device=model.device)
                    mask = target >= 0
                    if mask.any():
                        losses[t] = F.cross_entropy(logits[t][mask].float(), target[mask])
                loss = total_loss(losses, log_vars)
            weights = {t: math.exp(-s.item()) for t, s in log_vars.items()} if log_vars else None
            if not torch.isfinite(loss):
                _restore(model, last_good)
                failed = True
                yield {
                    "type": "error",
                    "step": step,
                    "message": f"the loss became {loss.item()} at step "
                    f"{step + 1}; training stopped and the last good weights were kept (try a lower learning rate)",
                }
                break
            if forward is None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            if step == 0:  # remember which encoder weights a run changes; checkpoints store only those
                model.trained_params.update(n for n, p in encoder_trainable if p.grad is not None)
            if config.grad_clip:
                dist.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 50 == 0:
                last_good = _snapshot(model)
            yield {
                "type": "step",
                "step": step,
                "epoch": epoch,
                "tasks": list(tasks),
                "loss": loss.item(),
                "losses": {t: v.item() for t, v in losses.items()},
                "task_weights": weights,
                "lr_encoder": config.lr_encoder * lr_factor(step - 1) if encoder_trainable else 0.0,
                "lr_heads": config.lr_heads * lr_factor(step - 1),
                "examples_per_sec": len(idx) / (time.perf_counter() - ts),
                "progress": step / total_steps,
            }
            if config.eval_every and val_data is not None and step % config.eval_every == 0:
                yield after_eval(run_eval(step, epoch))
        if stopped or failed:
            break
        if val_data is not None:
            yield after_eval(run_eval(step, epoch))
            if config.patience and evals_since_best >= config.patience:
                break

    if stopped and val_data is not None and step > 0:
        yield after_eval(run_eval(step, epoch))  # the stopped weights may still be the best
    if best_state is not None:
        _restore(model, best_state)
    elif output_dir is not None and step > 0:  # no validation data: keep the final weights
        checkpoint = dist.save(model, output_dir, config, frozen)
    dist.wait()  # every process reports done once the checkpoint is written
    model.eval()
    yield {
        "type": "done",
        "best_metrics": best_metrics,
        "best_score": None if best_metrics is None else best_score,
        "checkpoint": checkpoint,
        "stopped": stopped,
        "failed": failed,
        "steps": step,
        "seconds": time.perf_counter() - t0,
        "eval_only": False,
    }
