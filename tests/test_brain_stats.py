"""Per-unit statistics, FDR, effective dimensionality and ridge predictivity against independent references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats as sps
from scipy.stats import ortho_group

from toponets_exp.brain import (benjamini_hochberg, d_prime, effective_dimensionality, ridge_predictivity, welch_t,
                                welch_t_pvalues)


def data_with_spectrum(eigenvalues: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """(n, p) data whose sample covariance has exactly the given eigenvalues, in a random orthonormal basis."""
    rng = np.random.default_rng(seed)
    p = eigenvalues.size
    z = rng.normal(size=(n, p))
    q, _ = np.linalg.qr(z - z.mean(axis=0))  # orthonormal, centred columns
    basis = ortho_group.rvs(p, random_state=seed)
    return np.sqrt(n - 1) * q * np.sqrt(eigenvalues) @ basis.T + rng.normal(size=p)  # plus an arbitrary mean


@pytest.mark.parametrize("spectrum", [
    np.ones(10),
    np.array([5.0] + [0.0] * 9),
    np.array([4.0, 2.0, 1.0, 0.5, 0.25, 0.0]),
    1.0 / np.arange(1, 31),
])
def test_effective_dimensionality_matches_analytic_spectrum(spectrum: np.ndarray) -> None:
    x = data_with_spectrum(spectrum, n=200)
    expected = spectrum.sum() ** 2 / np.sum(spectrum**2)
    assert effective_dimensionality(x) == pytest.approx(expected, rel=1e-9)


def test_effective_dimensionality_isotropic_and_rank_one() -> None:
    assert effective_dimensionality(data_with_spectrum(np.ones(16), n=50)) == pytest.approx(16.0, rel=1e-9)
    rng = np.random.default_rng(1)
    rank_one = rng.normal(size=(40, 1)) * rng.normal(size=(1, 300))
    assert effective_dimensionality(rank_one) == pytest.approx(1.0, rel=1e-9)


def test_effective_dimensionality_wide_and_tall_agree_with_numpy_cov() -> None:
    rng = np.random.default_rng(2)
    for shape in [(20, 300), (300, 20)]:
        x = rng.normal(size=shape) @ np.diag(rng.uniform(0.1, 3.0, size=shape[1]))
        eig = np.linalg.eigvalsh(np.cov(x, rowvar=False))
        assert effective_dimensionality(torch.tensor(x)) == pytest.approx(eig.sum() ** 2 / np.sum(eig**2), rel=1e-9)


def test_effective_dimensionality_degenerate_inputs() -> None:
    assert np.isnan(effective_dimensionality(np.ones((10, 4))))
    with pytest.raises(ValueError, match="n_stimuli"):
        effective_dimensionality(np.ones(10))


def two_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two groups of unequal size and variance over 25 units with varied true differences."""
    rng = np.random.default_rng(seed)
    a = rng.normal(loc=np.linspace(-1, 1, 25), scale=rng.uniform(0.5, 2.0, 25), size=(17, 25))
    b = rng.normal(loc=0.0, scale=rng.uniform(0.5, 3.0, 25), size=(41, 25))
    return a, b


def test_welch_t_and_pvalues_match_scipy() -> None:
    a, b = two_groups()
    ref = sps.ttest_ind(a, b, equal_var=False, axis=0)
    np.testing.assert_allclose(welch_t(a, b), ref.statistic, rtol=1e-12)
    t, p = welch_t_pvalues(torch.tensor(a, dtype=torch.float32), b)
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-5)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-4)


def test_welch_zero_variance_units() -> None:
    a = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    b = np.array([[1.0, 5.0], [1.0, 5.0]])
    t, p = welch_t_pvalues(a, b)
    assert t[0] == 0.0 and p[0] == 1.0  # no difference, no variance: no evidence
    assert t[1] == -np.inf and p[1] == 0.0


def test_welch_zero_variance_units_beside_ordinary_ones() -> None:
    a, b = two_groups(5)
    a[:, 3], b[:, 3] = 2.5, 2.5  # 0/0
    a[:, 7], b[:, 7] = 4.0, -1.0  # exact positive difference
    a[:, 9] = 1.0  # one constant group: an ordinary Welch test
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exactly constant units are no precision loss
        t, p = welch_t_pvalues(a, b)
    assert (t[3], p[3]) == (0.0, 1.0) and (t[7], p[7]) == (np.inf, 0.0)
    ordinary = np.setdiff1d(np.arange(a.shape[1]), [3, 7])
    with pytest.warns(RuntimeWarning, match="Precision loss"):
        ref = sps.ttest_ind(a[:, ordinary], b[:, ordinary], equal_var=False, axis=0)
    np.testing.assert_allclose(t[ordinary], ref.statistic, rtol=1e-12)
    np.testing.assert_allclose(p[ordinary], ref.pvalue, rtol=1e-12)
    np.testing.assert_array_equal(welch_t(a, b), t)


def test_d_prime_matches_per_unit_formula() -> None:
    a, b = two_groups(3)
    expected = [
        (np.mean(a[:, u]) - np.mean(b[:, u])) / np.sqrt((np.var(a[:, u], ddof=1) + np.var(b[:, u], ddof=1)) / 2)
        for u in range(a.shape[1])
    ]
    np.testing.assert_allclose(d_prime(a, b), expected, rtol=1e-12)


def test_two_sample_input_checks() -> None:
    with pytest.raises(ValueError, match="same units"):
        welch_t(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        d_prime(np.zeros((1, 3)), np.zeros((4, 3)))


def test_benjamini_hochberg_hand_example() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> ×4/rank = 0.02, 0.02, 0.04, 0.04 (already monotone)
    rejected, adjusted = benjamini_hochberg(p, alpha=0.03)
    np.testing.assert_allclose(adjusted, [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_array_equal(rejected, [True, False, False, True])
    rejected, adjusted = benjamini_hochberg(np.array([0.2, 0.5, 0.04, 0.03]))
    # sorted 0.03, 0.04, 0.2, 0.5 -> 0.12, 0.08, 0.2667, 0.5 -> step-up min: 0.08, 0.08, 0.2667, 0.5
    np.testing.assert_allclose(adjusted, [0.8 / 3, 0.5, 0.08, 0.08])
    assert not rejected.any()


def test_benjamini_hochberg_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(size=400), rng.uniform(0, 1e-3, size=40)]).reshape(20, 22)
    rejected, adjusted = benjamini_hochberg(p, alpha=0.1)
    expected = sps.false_discovery_control(p.ravel(), method="bh").reshape(p.shape)
    np.testing.assert_allclose(adjusted, expected, rtol=1e-12)
    np.testing.assert_array_equal(rejected, expected <= 0.1)
    assert rejected.shape == p.shape and 40 <= rejected.sum() < 60


@pytest.mark.parametrize("pvalues, alpha", [(np.array([0.1, np.nan]), 0.05), (np.array([1.5]), 0.05),
                                            (np.array([0.1]), 1.0)])
def test_benjamini_hochberg_rejects_bad_input(pvalues: np.ndarray, alpha: float) -> None:
    with pytest.raises(ValueError):
        benjamini_hochberg(pvalues, alpha)


def planted_regression(noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features (240, 40) and targets (240, 15) = features @ W + noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 40))
    return x, x @ rng.normal(size=(40, 15)) + noise * rng.normal(size=(240, 15))


def test_ridge_predictivity_recovers_planted_linear_map() -> None:
    x, y = planted_regression(noise=0.5)
    result = ridge_predictivity(x, y)
    assert result.r.shape == (15,) and result.alpha.shape == (15,)
    assert result.median_r > 0.95
    assert set(result.alpha) <= {0.1, 1.0, 10.0, 100.0, 1000.0}
    assert result.median_r == pytest.approx(np.median(result.r))


def test_ridge_predictivity_is_chance_on_shuffled_targets() -> None:
    x, y = planted_regression(noise=0.5)
    result = ridge_predictivity(x, np.random.default_rng(1).permutation(y))
    assert abs(result.median_r) < 0.15
    assert result.alpha.max() >= 100.0  # pure noise: the strongest penalties win


def test_ridge_predictivity_single_target_and_checks() -> None:
    x, y = planted_regression(noise=0.1)
    single = ridge_predictivity(x, y[:, 0], n_splits=3, seed=5)
    assert single.r.shape == (1,) and single.r[0] > 0.95
    assert ridge_predictivity(x, y[:, 0], n_splits=3, seed=5).r[0] == single.r[0]  # deterministic
    with pytest.raises(ValueError, match="n_splits"):
        ridge_predictivity(x, y, n_splits=1)
    with pytest.raises(ValueError, match="alphas"):
        ridge_predictivity(x, y, alphas=(0.0, 1.0))
    with pytest.raises(ValueError, match="share n_stimuli"):
        ridge_predictivity(x, y[:10])


def test_population_std_convention_is_tdanns_tstat_and_dprime() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.0, 2.0, size=(12, 6)), rng.normal(0.0, 1.0, size=(30, 6))
    t = (a.mean(0) - b.mean(0)) / np.sqrt(np.std(a, axis=0) ** 2 / 12 + np.std(b, axis=0) ** 2 / 30)
    d = (a.mean(0) - b.mean(0)) / np.sqrt((np.std(a, axis=0) ** 2 + np.std(b, axis=0) ** 2) / 2)
    np.testing.assert_allclose(welch_t(a, b, ddof=0), t, rtol=1e-12)
    np.testing.assert_allclose(d_prime(a, b, ddof=0), d, rtol=1e-12)
    assert np.all(np.abs(welch_t(a, b, ddof=0)) > np.abs(welch_t(a, b)))  # smaller spread, larger |t|
