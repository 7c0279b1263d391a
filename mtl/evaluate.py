"""Evaluate a model on a labelled dataset: accuracy, macro-F1, loss and confusion per task."""

import numpy as np
import torch

from .metrics import accuracy, confusion, macro_f1


def evaluate(model, data, batch_size: int = 64, probs: dict | None = None) -> dict:
    """{task: {accuracy, macro_f1, loss, n, confusion, labels}} for the tasks data labels.
    `probs` ({task: (N, labels)}) skips the forward pass, e.g. when embeddings are cached."""
    tasks = [t for t in data.labels if t in model.tasks]
    if probs is None:
        probs = model.predict_proba(data.texts, batch_size)
    out = {}
    for t in tasks:
        y = np.asarray(data.label_ids(t, model.tasks[t]))  # in the model's label order, whatever the data's
        mask = y >= 0
        if not mask.any():
            continue
        p = probs[t][torch.as_tensor(mask)]
        y_true = y[mask]
        y_pred = p.argmax(-1).numpy()
        nll = -torch.log(p[torch.arange(len(y_true)), torch.as_tensor(y_true)].clamp_min(1e-12)).mean()
        k = len(model.tasks[t])
        out[t] = {
            "accuracy": accuracy(y_true, y_pred),
            "macro_f1": macro_f1(y_true, y_pred, k),
            "loss": float(nll),
            "n": int(mask.sum()),
            "labels": model.tasks[t],
            "confusion": confusion(y_true, y_pred, k).tolist(),
        }
    return out


def score(metrics: dict) -> float:
    """One number to pick the best checkpoint: mean macro-F1 over tasks."""
    return float(np.mean([m["macro_f1"] for m in metrics.values()])) if metrics else float("nan")


def summary(metrics: dict) -> dict:
    """The metrics without confusion matrices, for events and tables."""
    return {t: {k: m[k] for k in ("accuracy", "macro_f1", "loss", "n")} for t, m in metrics.items()}


def evaluate_by_group(model, data, batch_size: int = 64, probs: dict | None = None) -> dict[str, dict]:
    """{group: evaluate(...) on that group's rows} for data with groups (registers); one forward pass."""
    if probs is None:
        probs = model.predict_proba(data.texts, batch_size)
    out = {}
    for group, rows in data.group_indices().items():
        index = torch.as_tensor(rows)
        out[group] = evaluate(model, data.select(rows), probs={t: p[index] for t, p in probs.items()})
    return out
