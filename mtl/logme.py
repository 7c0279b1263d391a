"""LogME: how well frozen features suit a classification task, without training anything.

LogME (You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021) puts a Bayesian linear model on top of fixed features ``F`` (n x d): weights
``w ~ N(0, alpha^-1 I)`` and targets ``y = F w + N(0, beta^-1 I)``. For each class k it takes the
one-vs-rest target ``y_k = [label == k]``, maximises the log marginal evidence ``log p(y_k | F)``
over ``alpha`` (prior precision) and ``beta`` (noise precision) by MacKay's fixed-point iteration,
and reports the maximised evidence divided by n (per sample), averaged over the classes.

Reading the score:
- higher is better: the labels are more linearly predictable from the features, with a simple
  (well-regularised) linear model, so the features should transfer better to the task;
- it is a log density per sample, so its absolute value means little (it can be negative or
  positive and depends on n and d); compare scores of different models, layers or pooling choices
  computed on the *same* examples and labels;
- it is most informative with more examples than feature dimensions: when n <= d any labels can be
  fitted exactly, the noise precision beta often runs off to infinity and scores get less reliable.

Everything is computed from one economy SVD of ``F`` (``F = U S V^T``, ``sigma = S^2``), so each
iteration costs O(min(n, d)) per class. Only numpy is used; all arithmetic is float64.

The iteration stops when alpha and beta both change by less than ``tol`` (relative) in one step.
It can be slow (hundreds of steps, mostly when n < d), so the default cap is 1000 steps, which
costs milliseconds; 100 steps left errors of up to 0.1 nats per sample in such cases.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

__all__ = ["ClassEvidence", "fit_evidence", "logme", "logme_per_class"]

# alpha and beta are kept inside this range so that a degenerate target (e.g. y orthogonal to
# every feature direction) cannot drive them to 0 or inf and turn the evidence into nan.
_MIN_PRECISION, _MAX_PRECISION = 1e-300, 1e300
# Per-sample change of the evidence in the last iteration below which a run that hit max_iter is
# still trusted (its alpha or beta is heading to a boundary at infinity, see _fit).
_EVIDENCE_SETTLED = 1e-6


class ClassEvidence(NamedTuple):
    """The maximised evidence of one target vector, and where it was reached."""

    evidence: float  # log p(y | F, alpha, beta) / n: per-sample log marginal evidence
    alpha: float  # prior precision of the weights
    beta: float  # noise precision
    iterations: int  # fixed-point iterations run
    converged: bool  # alpha and beta stopped changing (relative change < tol) within max_iter
    settled: bool  # converged, or the evidence itself stopped changing (alpha or beta heading to inf)


def _check_features(features) -> np.ndarray:
    try:
        f = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"features must be a numeric 2-D array: {e}") from None
    if f.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n_samples, n_features), got shape {f.shape}")
    if f.shape[0] == 0 or f.shape[1] == 0:
        raise ValueError(f"features must be non-empty, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f


def _check_labels(labels, n: int) -> tuple[list, np.ndarray]:
    """Class values (sorted) and the class index of every sample."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"features have {n} rows but there are {len(y)} labels")
    try:
        classes, index = np.unique(y, return_inverse=True)
    except TypeError as e:  # e.g. a mix of str and int in an object array
        raise ValueError(f"labels must be mutually comparable (all ints or all strings): {e}") from None
    if len(classes) < 2:
        raise ValueError(f"LogME needs at least 2 classes, got {len(classes)}")
    return classes.tolist(), index.reshape(-1)


class _Spectrum(NamedTuple):
    """The parts of the economy SVD F = U S V^T that the iteration needs (V is not)."""

    u: np.ndarray  # (n, k) left singular vectors, k = min(n, d)
    s: np.ndarray  # (k,) singular values, exactly 0 below numerical rank
    n: int


def _spectrum(f: np.ndarray) -> _Spectrum:
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # V is never needed: m is handled in the SVD basis
    # Singular values at round-off level are treated as exact zeros (numerical rank, as matrix_rank does).
    s = np.where(s > s.max(initial=0.0) * max(f.shape) * np.finfo(np.float64).eps, s, 0.0)
    return _Spectrum(u, s, f.shape[0])


def _fit(sp: _Spectrum, y: np.ndarray, tol: float, max_iter: int) -> ClassEvidence:
    """Algorithm 1 of the paper for one target vector y (n,)."""
    n, s = sp.n, sp.s
    k = len(s)
    sigma = s**2
    z = sp.u.T @ y  # coordinates of y in the column space of F (through U)
    # ||y - U U^T y||^2, the part of y that no weight vector can fit. When n <= d, U is square and
    # orthogonal, so it is exactly 0; otherwise it is computed directly (not as ||y||^2 - ||z||^2,
    # which cancels badly when y is almost in the span of F).
    r_out = 0.0 if k == n else float(np.sum((y - sp.u @ z) ** 2))

    def stats(alpha: float, beta: float) -> tuple[float, float, float, float]:
        """gamma, n - gamma, m^T m and ||F m - y||^2 at (alpha, beta), in the SVD basis."""
        denom = alpha + beta * sigma
        shrink = alpha / denom  # 1 - beta sigma_i / (alpha + beta sigma_i), in (0, 1]
        gamma = float(np.sum(beta * sigma / denom))
        # n - gamma summed directly (not subtracted), so it stays accurate when gamma is close to n.
        n_minus_gamma = (n - k) + float(np.sum(shrink))
        # m = V (beta S / (alpha + beta sigma) * z), so m^T m = sum (beta s z / denom)^2, and
        # F m - y = U ((beta sigma / denom - 1) z) - (y - U z) = -U (shrink * z) - (y - U z).
        mtm = float(np.sum((beta * s * z / denom) ** 2))
        res = r_out + float(np.sum((shrink * z) ** 2))
        return gamma, n_minus_gamma, mtm, res

    def log_evidence(alpha: float, beta: float) -> float:
        """L(alpha, beta), with m and the residual evaluated at (alpha, beta).

        L = n/2 log beta + d/2 log alpha - n/2 log 2pi - beta/2 ||Fm - y||^2 - alpha/2 m^T m - 1/2 log|A|,
        A = alpha I_d + beta F^T F, log|A| = sum_{i<=k} log(alpha + beta sigma_i) + (d - k) log alpha: the
        d - k directions with no singular value (there are some when n < d) have eigenvalue alpha. The log
        alpha terms are folded together: d/2 log alpha - 1/2 log|A| = -1/2 sum_{i<=k} log1p(beta sigma_i / alpha).
        """
        _, _, mtm, res = stats(alpha, beta)
        return (
            0.5 * n * math.log(beta)
            - 0.5 * n * math.log(2 * math.pi)
            - 0.5 * beta * res
            - 0.5 * alpha * mtm
            - 0.5 * float(np.sum(np.log1p(beta * sigma / alpha)))
        )

    alpha, beta = 1.0, 1.0
    prev_alpha, prev_beta = alpha, beta
    converged, iterations = False, 0
    while iterations < max_iter:
        iterations += 1
        gamma, n_minus_gamma, mtm, res = stats(alpha, beta)
        # MacKay updates; when numerator and denominator are both 0 (e.g. all-zero features) the
        # evidence does not depend on that precision, so it is left where it is.
        new_alpha = alpha if gamma == 0.0 and mtm == 0.0 else gamma / max(mtm, _MIN_PRECISION)
        new_beta = beta if n_minus_gamma == 0.0 and res == 0.0 else n_minus_gamma / max(res, _MIN_PRECISION)
        new_alpha = min(max(new_alpha, _MIN_PRECISION), _MAX_PRECISION)
        new_beta = min(max(new_beta, _MIN_PRECISION), _MAX_PRECISION)
        change = max(abs(new_alpha - alpha) / alpha, abs(new_beta - beta) / beta)
        prev_alpha, prev_beta, alpha, beta = alpha, beta, new_alpha, new_beta
        if change < tol:
            converged = True
            break

    log_ev = log_evidence(alpha, beta)
    # The maximum can lie at a boundary: beta -> inf (noise-free fit, possible when n <= d) or
    # alpha -> inf (features carry no signal for y). The iteration then walks towards it and the
    # evidence tends to a finite limit, so a not-yet-converged run still has a usable value when
    # the evidence has stopped moving.
    settled = converged or abs(log_ev - log_evidence(prev_alpha, prev_beta)) / n < _EVIDENCE_SETTLED
    return ClassEvidence(log_ev / n, alpha, beta, iterations, converged, settled)


def fit_evidence(features, y, *, tol: float = 1e-3, max_iter: int = 1000) -> ClassEvidence:
    """Maximise the evidence of one real-valued target vector y (n,) given features (n, d).

    This is the per-class step of LogME, exposed for any regression-style target. ``tol`` is the
    relative change of both alpha and beta at which the iteration stops.
    """
    f = _check_features(features)
    t = np.asarray(y, dtype=np.float64)
    if t.shape != (f.shape[0],):
        raise ValueError(f"y must have shape ({f.shape[0]},) to match features, got {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("y contains NaN or infinite values")
    return _fit(_spectrum(f), t, tol, max_iter)


def logme_per_class(features, labels, *, tol: float = 1e-3, max_iter: int = 1000) -> dict:
    """{class value: ClassEvidence} for the one-vs-rest target of each class (classes sorted).

    ``ClassEvidence.evidence`` is already divided by n; ``logme`` is the mean of these values.
    """
    f = _check_features(features)
    classes, index = _check_labels(labels, f.shape[0])
    sp = _spectrum(f)  # one SVD shared by all classes
    out = {}
    for k, c in enumerate(classes):
        out[c] = _fit(sp, (index == k).astype(np.float64), tol, max_iter)
    stalled = [c for c, r in out.items() if not r.settled]
    if stalled:
        warnings.warn(
            f"LogME: the evidence did not converge within {max_iter} iterations for classes {stalled}",
            RuntimeWarning,
            stacklevel=2,
        )
    return out


def logme(features, labels, *, tol: float = 1e-3, max_iter: int = 1000) -> float:
    """LogME score of frozen ``features`` (n, d) for class ``labels`` (n,; ints or strings).

    The per-sample log marginal evidence of a Bayesian linear model, fitted one-vs-rest per class
    and averaged over classes. Higher means the features suit the task better; compare scores only
    across models or layers evaluated on the same examples.

    Raises ValueError for empty or non-finite features, a label count that differs from the number
    of feature rows, or fewer than 2 distinct labels.
    """
    per_class = logme_per_class(features, labels, tol=tol, max_iter=max_iter)
    return float(np.mean([r.evidence for r in per_class.values()]))
