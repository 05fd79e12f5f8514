"""TDANN's scalar-map smoothness against a direct re-derivation of its published algorithm and hand-made maps."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from toponets_exp.brain import tdann_smoothness
from toponets_exp.brain.tdann import binned_means, curve_smoothness


def reference(values, sheet, num_bins=20, num_samples=1, sample_size=None, distance_cutoff=None, seed=0):
    """TDANN's category_smoothness + spatial_utils.smoothness, written from the paper's code, pair by pair."""
    h, w = sheet
    positions = np.array([[i // w, i % w] for i in range(h * w)], dtype=float)
    rng = np.random.default_rng(seed)
    edges, scores = None, []
    for _ in range(num_samples):
        idx = np.arange(h * w) if sample_size is None else rng.choice(h * w, size=sample_size, replace=False)
        v = np.asarray(values, dtype=float).ravel()[idx]
        diff = np.abs(v[:, None] - v[None, :])[np.tril_indices(len(idx), k=-1)]
        dist = squareform(pdist(positions[idx]))[np.tril_indices(len(idx), k=-1)]
        if distance_cutoff is not None:
            keep = dist <= distance_cutoff
            dist, diff = dist[keep], diff[keep]
        if edges is None:
            edges = np.histogram_bin_edges(dist, bins=num_bins)
        means = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = diff[(dist >= lo) & (dist < hi)]
            means.append(inside.mean() if inside.size else np.nan)
        curve = np.array(means)
        nan = np.where(np.isnan(curve))[0]
        if len(nan):
            curve = curve[: nan[0]]
        scores.append(1.0 if np.ptp(curve) == 0 else (curve.max() - curve[0]) / curve.max())
    return float(np.mean(scores))


def grid(n):
    return np.divmod(np.arange(n * n), n)


@pytest.mark.parametrize("sheet", [(8, 8), (7, 13), (16, 16), (12, 20)])
def test_matches_the_reference_on_random_maps(sheet):
    rng = np.random.default_rng(sum(sheet))
    values = rng.normal(size=sheet[0] * sheet[1]).cumsum()  # some spatial structure along rows
    assert tdann_smoothness(values, sheet) == pytest.approx(reference(values, sheet), abs=1e-12)
    for bins in (5, 10):
        assert tdann_smoothness(values, sheet, num_bins=bins) == pytest.approx(
            reference(values, sheet, num_bins=bins), abs=1e-12)


def test_matches_the_reference_with_samples_and_a_cutoff():
    rng = np.random.default_rng(3)
    sheet = (20, 24)
    values = rng.normal(size=480)
    kwargs = dict(num_samples=7, sample_size=150, distance_cutoff=9.0, seed=11)
    assert tdann_smoothness(values, sheet, **kwargs) == pytest.approx(reference(values, sheet, **kwargs), abs=1e-12)


def test_chunked_pairs_give_the_same_curve(monkeypatch):
    from toponets_exp.brain import tdann

    rng = np.random.default_rng(5)
    values = rng.normal(size=30 * 30).cumsum()
    whole = tdann_smoothness(values, (30, 30))
    monkeypatch.setattr(tdann, "PAIR_CHUNK", 1000)  # many blocks of first indices
    assert tdann_smoothness(values, (30, 30)) == pytest.approx(whole, abs=1e-12)


def test_hand_made_maps():
    rows, cols = grid(32)
    assert tdann_smoothness(cols.astype(float), (32, 32)) > 0.9  # a ramp: near agree, far differ
    assert tdann_smoothness((rows + cols).astype(float), (32, 32)) > 0.9
    rows, cols = grid(64)
    checker = ((rows + cols) % 2).astype(float)
    assert tdann_smoothness(checker, (64, 64)) < 0.05
    for seed in range(5):  # a shuffled ramp has no spatial structure
        shuffled = np.random.default_rng(seed).permutation(cols.astype(float))
        assert tdann_smoothness(shuffled, (64, 64)) < 0.1
    assert tdann_smoothness(np.full(64 * 64, 3.0), (64, 64)) == 1.0  # flat curve


def test_bounded_and_direction_aware():
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = rng.normal(size=16 * 16) * rng.uniform(0.1, 10)
        assert 0.0 <= tdann_smoothness(values, (16, 16)) <= 1.0
    # a curve that falls with distance scores 0: its first bin is its maximum
    assert curve_smoothness([3.0, 2.0, 1.0]) == 0.0
    assert curve_smoothness([1.0, 2.0, 4.0]) == pytest.approx(0.75)
    assert curve_smoothness([1.0, 2.0, np.nan, 10.0]) == pytest.approx(0.5)  # cut at the first empty bin


def test_binned_means_half_open_bins():
    d = np.array([0.0, 0.5, 1.0, 1.0, 2.0])
    v = np.array([1.0, 3.0, 5.0, 7.0, 100.0])
    means, edges = binned_means(d, v, num_bins=2)
    np.testing.assert_allclose(edges, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(means, [2.0, 6.0])  # the pair at exactly the largest distance is left out
    means, _ = binned_means(d, v, edges=np.array([0.0, 0.25, 0.4, 2.5]))
    assert np.isnan(means[1]) and means[2] == pytest.approx((3 + 5 + 7 + 100) / 4)


def test_bad_input():
    with pytest.raises(ValueError, match="one number per unit"):
        tdann_smoothness(np.zeros(10), (3, 3))
    with pytest.raises(ValueError, match="finite"):
        tdann_smoothness(np.array([0.0, np.inf, 1.0, 2.0]), (2, 2))
    with pytest.raises(ValueError, match="sample_size"):
        tdann_smoothness(np.zeros(9), (3, 3), sample_size=10)
    with pytest.raises(ValueError, match="distance_cutoff"):
        tdann_smoothness(np.zeros(9), (3, 3), distance_cutoff=0)
