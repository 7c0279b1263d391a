"""LogME: checked against dense brute-force formulas, known optima, and expected behaviour."""

import math
import warnings

import numpy as np
import pytest

from mtl.logme import ClassEvidence, fit_evidence, logme, logme_per_class

TIGHT = dict(tol=1e-12, max_iter=100_000)


def dense_evidence(f, y, alpha, beta):
    """Per-sample evidence straight from the paper's formula, with dense A = alpha I + beta F^T F."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    r = f @ m - y
    sign, logdet = np.linalg.slogdet(a)
    assert sign > 0
    log_ev = (
        n / 2 * math.log(beta)
        + d / 2 * math.log(alpha)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * r @ r
        - alpha / 2 * m @ m
        - logdet / 2
    )
    return log_ev / n, a, m, r


def gaussian_evidence(f, y, alpha, beta):
    """The same quantity as a Gaussian density: y ~ N(0, F F^T / alpha + I / beta), per sample."""
    n = len(y)
    cov = f @ f.T / alpha + np.eye(n) / beta
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (n * math.log(2 * math.pi) + logdet + y @ np.linalg.solve(cov, y)) / n


def informative(n=300, d=16, classes=3, seed=0):
    """Class-dependent means plus unit noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    return rng.normal(size=(classes, d))[labels] + rng.normal(size=(n, d)), labels


def with_spectrum(sigma, n, d, z, seed=0):
    """F = Q1 [diag(sqrt(sigma)) 0; 0 0] Q2^T with random orthogonal Q1, Q2, and y = Q1 z."""
    rng = np.random.default_rng(seed)
    q1, _ = np.linalg.qr(rng.normal(size=(n, n)))
    q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    core = np.zeros((n, d))
    core[np.arange(len(sigma)), np.arange(len(sigma))] = np.sqrt(sigma)
    return q1 @ core @ q2.T, q1 @ z


# 1. A small hand-checked case ----------------------------------------------------------------------

F4 = np.array([[1.0, 0.5], [0.8, -0.3], [-1.0, 0.2], [-0.6, -0.9]])
Y4 = np.array([1.0, 1.0, 0.0, 0.0])


def test_tiny_case_matches_dense_formula_and_gaussian_density():
    r = fit_evidence(F4, Y4, **TIGHT)
    assert isinstance(r, ClassEvidence) and r.converged
    assert 0 < r.alpha < 1e3 and 0 < r.beta < 1e3  # an interior optimum
    ev, _, _, _ = dense_evidence(F4, Y4, r.alpha, r.beta)
    assert r.evidence == pytest.approx(ev, rel=1e-12, abs=1e-12)
    assert r.evidence == pytest.approx(gaussian_evidence(F4, Y4, r.alpha, r.beta), rel=1e-12, abs=1e-12)


def test_tiny_case_is_a_fixed_point_of_the_updates():
    r = fit_evidence(F4, Y4, **TIGHT)
    n, d = F4.shape
    _, a, m, res = dense_evidence(F4, Y4, r.alpha, r.beta)
    gamma = d - r.alpha * np.trace(np.linalg.inv(a))  # = sum beta sigma / (alpha + beta sigma), computed densely
    assert r.alpha == pytest.approx(gamma / (m @ m), rel=1e-9)
    assert r.beta == pytest.approx((n - gamma) / (res @ res), rel=1e-9)


def test_tiny_case_is_a_maximum():
    r = fit_evidence(F4, Y4, **TIGHT)
    best = dense_evidence(F4, Y4, r.alpha, r.beta)[0]
    for alpha, beta in [
        (r.alpha * 1.5, r.beta),
        (r.alpha / 1.5, r.beta),
        (r.alpha, r.beta * 1.5),
        (r.alpha, r.beta / 1.5),
    ]:
        assert dense_evidence(F4, Y4, alpha, beta)[0] < best


def test_default_tolerance_is_close_to_the_exact_optimum():
    loose, tight = fit_evidence(F4, Y4), fit_evidence(F4, Y4, **TIGHT)
    assert loose.converged and loose.iterations < tight.iterations
    assert loose.evidence == pytest.approx(tight.evidence, abs=1e-6)
    assert loose.alpha == pytest.approx(tight.alpha, rel=1e-2)
    assert loose.beta == pytest.approx(tight.beta, rel=1e-2)


@pytest.mark.parametrize("n, d", [(7, 3), (4, 7), (5, 5)])
def test_known_optimum(n, d):
    """With z_i^2 = sigma_i / alpha + 1 / beta in every direction, every factor of the Gaussian evidence is
    at its own maximum, so (alpha, beta) is the exact global optimum (directions outside the span of F
    have sigma = 0)."""
    alpha, beta = 10.0, 2.0
    sigma = np.array([9.0, 4.0, 1.0, 0.25, 0.5][: min(n, d)])
    z = np.sqrt(np.concatenate([sigma, np.zeros(n - len(sigma))]) / alpha + 1 / beta) * (-1) ** np.arange(n)
    f, y = with_spectrum(sigma, n, d, z)
    r = fit_evidence(f, y, **TIGHT)
    assert r.alpha == pytest.approx(alpha, rel=1e-6)
    assert r.beta == pytest.approx(beta, rel=1e-6)
    assert r.evidence == pytest.approx(dense_evidence(f, y, alpha, beta)[0], rel=1e-9)


# 2. Known behaviour ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_informative_features_beat_random_ones(seed):
    f, labels = informative(seed=seed)
    noise = np.random.default_rng(seed + 100).normal(size=f.shape)
    assert logme(f, labels) > logme(noise, labels) + 0.3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_dimensions_lower_the_score(seed):
    f, labels = informative(seed=seed)
    padded = np.hstack([f, np.random.default_rng(seed + 200).normal(size=(len(f), 64))])
    assert logme(padded, labels) < logme(f, labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permuted_labels_score_lower(seed):
    f, labels = informative(seed=seed)
    shuffled = np.random.default_rng(seed + 300).permutation(labels)
    assert logme(f, shuffled) < logme(f, labels) - 0.3


def test_score_is_the_mean_of_per_class_evidences():
    f, labels = informative(classes=4)
    per_class = logme_per_class(f, labels)
    assert list(per_class) == [0, 1, 2, 3]
    assert all(r.converged for r in per_class.values())
    assert logme(f, labels) == pytest.approx(np.mean([r.evidence for r in per_class.values()]), rel=1e-15)
    for k, r in per_class.items():
        assert r.evidence == pytest.approx(fit_evidence(f, (labels == k).astype(float)).evidence, rel=1e-12)


def test_string_labels_and_relabelling_give_the_same_score():
    f, labels = informative()
    names = np.array(["sports", "business", "film"])[labels]
    assert logme(f, names.tolist()) == pytest.approx(logme(f, labels), rel=1e-12)
    assert list(logme_per_class(f, names)) == ["business", "film", "sports"]
    assert logme(f, labels + 10) == pytest.approx(logme(f, labels), rel=1e-12)


def test_invariant_to_feature_scale_and_rotation():
    """A scale of F is absorbed by alpha, and the prior is isotropic, so only the evidence's maximum matters."""
    f, labels = informative()
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(f.shape[1],) * 2))
    base = logme(f, labels, tol=1e-10)
    assert logme(100 * f, labels, tol=1e-10) == pytest.approx(base, abs=1e-8)
    assert logme(f @ q, labels, tol=1e-10) == pytest.approx(base, abs=1e-8)


def test_does_not_converge_warns():
    f, labels = informative()
    with pytest.warns(RuntimeWarning, match="did not converge"):
        per_class = logme_per_class(f, labels, max_iter=2)
    assert not any(r.converged for r in per_class.values())


# 3. Input validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "features, labels, match",
    [
        (np.ones((4, 2)), [0, 1, 0], "4 rows but there are 3 labels"),
        (np.ones((4, 2)), [0, 0, 0, 0], "at least 2 classes"),
        (np.ones((4, 2)), ["a"] * 4, "at least 2 classes"),
        (np.array([[0.0, np.nan], [1, 1], [2, 2]]), [0, 1, 0], "NaN or infinite"),
        (np.array([[0.0, np.inf], [1, 1], [2, 2]]), [0, 1, 0], "NaN or infinite"),
        (np.zeros((0, 3)), [], "non-empty"),
        (np.zeros((3, 0)), [0, 1, 0], "non-empty"),
        (np.ones(4), [0, 1, 0, 1], "2-D"),
        ([["a", "b"], ["c", "d"]], [0, 1], "numeric"),
        (np.ones((4, 2)), np.zeros((4, 1)), "labels must be 1-D"),
        (np.ones((2, 2)), np.array([1, "a"], dtype=object), "comparable"),
    ],
)
def test_invalid_input(features, labels, match):
    with pytest.raises(ValueError, match=match):
        logme(features, labels)


def test_fit_evidence_validates_y():
    with pytest.raises(ValueError, match="shape"):
        fit_evidence(F4, Y4[:3])
    with pytest.raises(ValueError, match="NaN"):
        fit_evidence(F4, np.array([1.0, np.nan, 0, 0]))


# 4. n < d, n > d and degenerate features ------------------------------------------------------------


@pytest.mark.parametrize("n, d", [(12, 40), (40, 12), (20, 20)])
def test_matches_dense_formula_for_any_shape(n, d):
    rng = np.random.default_rng(n * d)
    labels = np.arange(n) % 3
    f = rng.normal(size=(n, d)) + 2 * rng.normal(size=(3, d))[labels]
    # Not TIGHT: where beta runs off to infinity (n <= d) alpha and beta never stop changing.
    for k, r in logme_per_class(f, labels, tol=1e-10, max_iter=3000).items():
        y = (labels == k).astype(float)
        assert np.isfinite(r.evidence) and r.settled
        assert r.evidence == pytest.approx(gaussian_evidence(f, y, r.alpha, r.beta), abs=1e-9)
        if r.beta < 1e8:  # the dense A is well conditioned enough to solve
            assert r.evidence == pytest.approx(dense_evidence(f, y, r.alpha, r.beta)[0], abs=1e-8)


def test_n_less_than_d_noise_free_limit():
    """With n < d the evidence can peak at beta -> inf (a noise-free fit); it then tends to the maximum over
    alpha of log N(y; 0, F F^T / alpha)."""
    rng = np.random.default_rng(0)
    f, y = rng.normal(size=(5, 12)), np.array([0.0, 0.0, 0.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fit_evidence(f, y)
    assert r.settled and r.beta > 1e6 * r.alpha
    k = f @ f.T
    n = len(y)
    a_star = n / (y @ np.linalg.solve(k, y))
    limit = -0.5 * (n * math.log(2 * math.pi) + np.linalg.slogdet(k)[1] - n * math.log(a_star) + n) / n
    assert r.alpha == pytest.approx(a_star, rel=1e-6)
    assert r.evidence == pytest.approx(limit, abs=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(logme(f, [0, 1, 2, 0, 1]))


def test_rank_deficient_features():
    f, labels = informative(n=60, d=5)
    doubled = np.hstack([f, f, np.zeros((60, 3))])  # rank 5 in 13 dimensions
    for k, r in logme_per_class(doubled, labels, **TIGHT).items():
        y = (labels == k).astype(float)
        assert r.evidence == pytest.approx(dense_evidence(doubled, y, r.alpha, r.beta)[0], abs=1e-9)


def test_all_zero_features_give_the_pure_noise_evidence():
    labels = np.array([0, 1] * 5 + [2] * 2)
    n = len(labels)
    expected = []
    for k in range(3):
        y = (labels == k).astype(float)
        beta = n / (y @ y)  # the best noise model y ~ N(0, I / beta)
        expected.append(0.5 * math.log(beta) - 0.5 * math.log(2 * math.pi) - 0.5)
    assert logme(np.zeros((n, 4)), labels) == pytest.approx(np.mean(expected), rel=1e-12)
