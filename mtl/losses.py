"""Combining the per-task losses into the one that is minimised (shared by mtl/train.py and
mtl/distributed.py)."""


def total_loss(losses: dict, log_vars: dict | None = None):
    """sum_i L_i, or with uncertainty weighting (Kendall, Gal & Cipolla 2018) sum_i exp(-s_i) * L_i + s_i,
    one learnable s_i per task."""
    if log_vars is None:
        return sum(losses.values())
    return sum((-log_vars[t]).exp() * v + log_vars[t] for t, v in losses.items())
