"""Accuracy, macro-F1 and confusion matrices, in plain numpy."""

import numpy as np


def confusion(y_true, y_pred, num_labels: int) -> np.ndarray:
    """(num_labels, num_labels) counts; rows are the true label, columns the prediction."""
    m = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def macro_f1(y_true, y_pred, num_labels: int) -> float:
    """Mean F1 over the labels that occur in y_true or y_pred (as scikit-learn does)."""
    m = confusion(y_true, y_pred, num_labels)
    tp = np.diag(m).astype(float)
    support, predicted = m.sum(1), m.sum(0)
    present = (support + predicted) > 0
    if not present.any():
        return float("nan")
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=(support + predicted) > 0)
    return float(f1[present].mean())
