"""The losses a training step minimises: one cross-entropy per task, combined into one number.

Written once, used by every runner (mtl/train.py's LocalRunner, mtl/distributed.py's AccelerateRunner)."""

import torch
import torch.nn.functional as F


def task_loss_sums(logits: dict, labels: dict) -> dict:
    """{task: cross-entropy summed over the rows labelled for the task}, from {task: (B, labels)} logits and
    {task: (B,)} label ids (-1 = no label). Sums, not means, so that the parts of a batch (micro-batches,
    processes) add up: divided by the task's labelled rows in the whole batch they give its mean."""
    out = {}
    for task, target in labels.items():
        mask = target >= 0
        out[task] = F.cross_entropy(logits[task][mask].float(), target[mask], reduction="sum")
    return out


def uncertainty_log_vars(tasks, device) -> dict:
    """Kendall, Gal & Cipolla (2018): one learnable s_i per task (weight exp(-s_i)), starting at 0 (weight 1)."""
    return {t: torch.zeros((), device=device, requires_grad=True) for t in tasks}


def total_loss(losses: dict, log_vars: dict | None = None, regularise: bool = True):
    """sum_i L_i, or with uncertainty weighting sum_i exp(-s_i) * L_i + s_i. regularise=False leaves out the
    + s_i, for the parts of a batch after the first (the term belongs to the batch once)."""
    if log_vars is None:
        return sum(losses.values())
    if not regularise:
        return sum((-log_vars[t]).exp() * v for t, v in losses.items())
    return sum((-log_vars[t]).exp() * v + log_vars[t] for t, v in losses.items())
