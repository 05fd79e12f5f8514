"""Topoformer's TGI against a re-derivation written from Topoformer's cookbook (`compute_generic_summary_stat`,
`calculate_tgi`, `Constraints(wrap=True)`): the same steps on the full ordered-pair matrix with the global generator."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats
from scipy.spatial import distance_matrix

from toponets_exp.brain.topoformer import TGI_CUTOFFS, topoformer_tgi, torus_distances


def reference_distances(side: int) -> np.ndarray:
    """Constraints(side², …, wrap=True).distances: per-axis |Δ| of coordinates index/side, wrapped above 0.5."""
    coords = np.indices((side, side)).reshape(2, side * side).T / side
    dx = distance_matrix(coords[:, :1], coords[:, :1], p=1)
    dy = distance_matrix(coords[:, 1:], coords[:, 1:], p=1)
    dx[dx > 0.5] = 1 - dx[dx > 0.5]
    dy[dy > 0.5] = 1 - dy[dy > 0.5]
    return np.sqrt(dx**2 + dy**2)


def reference_tgi(activations: np.ndarray, side: int, n_samples: int, seed: int) -> float:
    """calculate_tgi of one layer after np.random.seed(seed): every ordered pair within each cutoff, NaN → 0."""
    activations = activations.copy()
    activations[np.isnan(activations)] = 0
    np.random.seed(seed)
    values = []
    for max_dist in np.linspace(0.1, 0.8, 8):
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant unit: NaN correlations, set to 0 below
            corrs = np.corrcoef(activations.T).flatten()
        corrs[np.isnan(corrs)] = 0
        dists = reference_distances(side).flatten()
        corrs, dists = corrs[dists <= max_dist], dists[dists <= max_dist]
        corrs, dists = corrs[dists != 0], dists[dists != 0]
        idx = np.random.choice(len(corrs), size=min(n_samples, len(corrs)), replace=False)
        corrs, dists = corrs[idx], dists[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(-stats.spearmanr((corrs - corrs.mean()) / corrs.std(), dists)[0])
    return float(np.mean(values))


def smooth_responses(side: int, n: int, seed: int, sigma: float = 1.5) -> np.ndarray:
    """(n, side²) responses that vary smoothly over a toroidal sheet (wrap-mode Gaussian blur of noise)."""
    noise = np.random.default_rng(seed).normal(size=(n, side, side))
    return ndimage.gaussian_filter(noise, (0, sigma, sigma), mode="wrap").reshape(n, -1)


def test_distances_are_topoformers_bit_for_bit() -> None:
    for side in (10, 12, 20):
        assert np.array_equal(torus_distances((side, side)), reference_distances(side))


@pytest.mark.parametrize("side, n_samples", [(12, 100_000), (10, 100_000), (14, 3_000)])
def test_tgi_equals_the_reference(side: int, n_samples: int) -> None:
    """Smooth and random responses, with every pair kept and with pairs drawn (same draws under the same seed);
    a NaN response and a constant unit as Topoformer treats them."""
    rng = np.random.default_rng(side)
    smooth = smooth_responses(side, 40, side)
    odd = rng.normal(size=(40, side * side))
    odd[3, 5], odd[:, 7] = np.nan, 1.0
    for responses in (smooth, rng.normal(size=(40, side * side)), odd):
        ours = topoformer_tgi(responses, (side, side), n_samples=n_samples, seed=7)
        assert ours.tgi == pytest.approx(reference_tgi(responses, side, n_samples, seed=7), rel=1e-9, abs=1e-12)
        assert ours.cutoffs == TGI_CUTOFFS and len(ours.per_cutoff) == len(ours.pairs) == 8


def test_tgi_known_answers() -> None:
    """Smooth maps are topographic, shuffling the units removes it, and a sheet of fewer than 100 units has no pair
    within the first cutoff (NaN, as in Topoformer)."""
    smooth = smooth_responses(16, 60, 0)
    assert topoformer_tgi(smooth, (16, 16)).tgi > 0.3
    shuffled = smooth[:, np.random.default_rng(1).permutation(256)]
    assert abs(topoformer_tgi(shuffled, (16, 16)).tgi) < 0.05
    small = topoformer_tgi(smooth_responses(8, 30, 2), (8, 8))
    assert small.pairs[0] == 0 and np.isnan(small.per_cutoff[0]) and np.isnan(small.tgi)
    assert all(np.isfinite(small.per_cutoff[1:]))


def test_rectangular_sheet_is_a_torus_of_area_one() -> None:
    d = torus_distances((4, 16))
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert d[0, 1] == pytest.approx(1 / 8) and d[0, 16] == pytest.approx(1 / 8)  # one step along either axis
    assert d[0, 15] == pytest.approx(1 / 8) and d[0, 48] == pytest.approx(1 / 8)  # wrapped neighbours
    assert d.max() == pytest.approx(np.hypot(0.25, 1.0))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n_units = H·W = 16"):
        topoformer_tgi(np.zeros((5, 15)), (4, 4))
    with pytest.raises(ValueError, match="n_samples"):
        topoformer_tgi(np.zeros((5, 16)), (4, 4), n_samples=1)
