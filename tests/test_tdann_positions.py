"""TDANN's smoothness of a map at explicit positions against re-derivations of neuroailab/TDANN (commit 80c585d):
maps/it_map.py::ITMap.category_smoothness and maps/v1_map.py::V1Map.metric_difference_over_distance, with
utils/spatial_utils.py::agg_by_distance and ::smoothness and utils/array_utils.py::lower_tri, on positions laid out
as TDANN lays out a conv layer (channel × row × column, each unit near its retinotopic anchor)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from toponets_exp.brain import tdann_curves_at, tdann_smoothness_at
from toponets_exp.brain.tdann import tdann_curves


def layer_positions(channels: int, rows: int, cols: int, spacing: float, seed: int) -> np.ndarray:
    """(C·H·W, 2) mm positions, channel-major: unit (c, h, w) at (w, h)·spacing plus a uniform ±spacing/2 jitter."""
    c, h, w = np.meshgrid(np.arange(channels), np.arange(rows), np.arange(cols), indexing="ij")
    anchors = np.stack([w.ravel(), h.ravel()], axis=1) * spacing
    return anchors + np.random.default_rng(seed).uniform(-spacing / 2, spacing / 2, anchors.shape)


def lower_tri(x: np.ndarray) -> np.ndarray:
    return x[np.tril_indices_from(x, k=-1)]


def agg_by_distance(distances: np.ndarray, values: np.ndarray, bin_edges: np.ndarray | None,
                    num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """TDANN's agg_by_distance: sort by distance, edges from histogram_bin_edges, nanmean of [start, end)."""
    order = np.argsort(distances)
    d, v = distances[order], values[order]
    if bin_edges is None:
        bin_edges = np.histogram_bin_edges(d, bins=num_bins)
    means = np.zeros(len(bin_edges) - 1)
    for i in range(1, len(bin_edges)):
        inside = v[(d >= bin_edges[i - 1]) & (d < bin_edges[i])]
        means[i - 1] = np.nan if inside.shape[0] == 0 else np.nanmean(inside)
    return means, bin_edges


def category_smoothness(sel, mean_responses, positions, num_samples, sample_size=500, distance_cutoff=60.0):
    """ITMap.category_smoothness: seed 424, draw, keep mean response > 0.5, lower-triangle pairs, cutoff, bins."""
    rng = np.random.default_rng(seed=424)
    bin_edges, profiles = None, []
    for _ in range(num_samples):
        indices = rng.choice(np.arange(len(positions)), size=(sample_size,), replace=False)
        indices = indices[mean_responses[indices] > 0.5]
        subset = sel[indices][:, np.newaxis]
        diff = lower_tri(np.abs(subset - subset.T))
        distances = lower_tri(squareform(pdist(positions[indices])))
        mask = np.nonzero(distances <= distance_cutoff)[0]
        means, bin_edges = agg_by_distance(distances[mask], diff[mask], bin_edges, 20)
        profiles.append(means)
    return bin_edges, np.stack(profiles)


def metric_difference_over_distance(preferences, positions, distance_cutoff, num_samples, sample_size, num_bins):
    """V1Map.metric_difference_over_distance for angles: seed 424, |Δ| ≥ 90 wrapped to 180 − |Δ|, cutoff, bins."""
    rng = np.random.default_rng(seed=424)
    bin_edges, curves = None, []
    for _ in range(num_samples):
        indices = rng.choice(np.arange(len(positions)), size=(sample_size,), replace=False)
        sample = preferences[indices, np.newaxis]
        diffs = lower_tri(np.abs(sample - sample.T))
        diffs[np.where(diffs >= 90)] = 180 - diffs[np.where(diffs >= 90)]
        dists = lower_tri(squareform(pdist(positions[indices])))
        mask = np.nonzero(dists <= distance_cutoff)[0]
        means, bin_edges = agg_by_distance(dists[mask], diffs[mask], bin_edges, num_bins)
        curves.append(means)
    return bin_edges, np.stack(curves)


def tdann_curve_smoothness(curve: np.ndarray) -> float:
    """spatial_utils.smoothness."""
    nans = np.where(np.isnan(curve))[0]
    if len(nans) > 0:
        curve = curve[: nans[0]]
    if np.ptp(curve) == 0:
        return 1.0
    return (np.max(curve) - curve[0]) / np.max(curve)


def test_category_smoothness_equals_tdann() -> None:
    """A 16 × 12 × 12 layer over ~70 mm, a smooth t map plus noise, about half the units responsive."""
    positions = layer_positions(16, 12, 12, 70.0 / 12, seed=0)
    rng = np.random.default_rng(1)
    sel = 6 * np.sin(positions[:, 0] / 9.0) * np.cos(positions[:, 1] / 13.0) + rng.normal(size=len(positions))
    mean_responses = rng.uniform(0.0, 1.0, len(positions))
    edges, curves = category_smoothness(sel, mean_responses, positions, num_samples=6)
    kwargs = dict(num_bins=20, num_samples=6, sample_size=500, distance_cutoff=60.0, seed=424,
                  eligible=mean_responses > 0.5)
    our_edges, our_curves = tdann_curves_at(sel, positions, **kwargs)
    np.testing.assert_allclose(our_edges, edges, rtol=1e-13)
    np.testing.assert_allclose(our_curves, curves, rtol=1e-11, equal_nan=True)
    assert np.isfinite(curves).sum() > 100 and edges[-1] <= 60.0
    expected = np.nanmean([tdann_curve_smoothness(c) for c in curves])
    assert tdann_smoothness_at(sel, positions, **kwargs) == pytest.approx(expected, rel=1e-11)
    assert expected > 0.3  # the map is smooth on this scale


def test_orientation_difference_equals_tdann() -> None:
    """An 8 × 6 × 6 layer at 1 mm spacing, orientation preferences in [0, 180) varying smoothly with x and y."""
    positions = layer_positions(8, 6, 6, 1.0, seed=2)
    rng = np.random.default_rng(3)
    preferences = np.mod(40 * positions[:, 0] + 25 * positions[:, 1] + rng.normal(0, 20, len(positions)), 180)
    edges, curves = metric_difference_over_distance(preferences, positions, 4.0, num_samples=5, sample_size=120,
                                                    num_bins=20)
    our_edges, our_curves = tdann_curves_at(preferences, positions, num_samples=5, sample_size=120,
                                            distance_cutoff=4.0, seed=424, period=180.0)
    np.testing.assert_allclose(our_edges, edges, rtol=1e-13)
    np.testing.assert_allclose(our_curves, curves, rtol=1e-11, equal_nan=True)
    assert np.nanmax(curves) > 45  # differences near the wrap were folded, none above 90
    assert np.all(curves[np.isfinite(curves)] <= 90)
    shifted = tdann_curves_at(preferences + 180.0 * rng.integers(-2, 3, len(preferences)), positions, num_samples=5,
                              sample_size=120, distance_cutoff=4.0, seed=424, period=180.0)
    np.testing.assert_allclose(shifted[1], our_curves, atol=1e-9)  # outside [0, 180) ours still wraps right


def test_every_unit_and_the_sheet_case() -> None:
    """One sample of every unit is TDANN's statistic on all pairs; the grid version is the positions version."""
    positions = layer_positions(4, 5, 5, 2.0, seed=4)
    values = np.random.default_rng(5).normal(size=len(positions)).cumsum()
    d = lower_tri(squareform(pdist(positions)))
    diff = lower_tri(np.abs(values[:, None] - values[None, :]))
    means, edges = agg_by_distance(d, diff, None, 12)
    our_edges, (curve,) = tdann_curves_at(values, positions, num_bins=12)
    np.testing.assert_allclose(our_edges, edges, rtol=1e-13)
    np.testing.assert_allclose(curve, means, rtol=1e-11, equal_nan=True)
    assert tdann_smoothness_at(values, positions, num_bins=12) == pytest.approx(tdann_curve_smoothness(means))
    grid = np.stack(np.divmod(np.arange(48), 8), axis=1).astype(float)
    for kwargs in ({}, dict(num_samples=3, sample_size=20, distance_cutoff=5.0, seed=9)):
        sheet_edges, sheet_curves = tdann_curves(values[:48], (6, 8), **kwargs)
        at_edges, at_curves = tdann_curves_at(values[:48], grid, **kwargs)
        np.testing.assert_array_equal(at_edges, sheet_edges)
        np.testing.assert_array_equal(at_curves, sheet_curves)


def test_eligible_units_need_finite_values_only_where_eligible() -> None:
    positions = layer_positions(2, 6, 6, 1.0, seed=6)
    values = np.random.default_rng(7).normal(size=len(positions))
    eligible = np.arange(len(positions)) % 3 != 0
    with_inf = np.where(eligible, values, np.inf)
    ours = tdann_curves_at(with_inf, positions, num_samples=3, sample_size=40, seed=1, eligible=eligible)
    same = tdann_curves_at(values, positions, num_samples=3, sample_size=40, seed=1, eligible=eligible)
    np.testing.assert_array_equal(ours[1], same[1])
    all_units = tdann_curves_at(values, positions, num_samples=3, sample_size=40, seed=1)
    assert not np.array_equal(all_units[1], same[1], equal_nan=True)  # the mask was applied after the draw
    with pytest.raises(ValueError, match="finite"):
        tdann_curves_at(np.where(eligible, np.nan, values), positions, eligible=eligible)


def test_bad_input() -> None:
    positions = layer_positions(2, 3, 3, 1.0, seed=8)
    values = np.zeros(len(positions))
    with pytest.raises(ValueError, match="positions must be"):
        tdann_curves_at(values, positions[:, :1])
    with pytest.raises(ValueError, match="positions must be"):
        tdann_curves_at(values[:-1], positions)
    with pytest.raises(ValueError, match="1-D"):
        tdann_curves_at(values.reshape(2, -1), positions)
    with pytest.raises(ValueError, match="positions contain"):
        tdann_curves_at(values, np.where(positions == positions[0, 0], np.nan, positions))
    with pytest.raises(ValueError, match="finite"):
        tdann_smoothness_at(np.full(len(positions), np.inf), positions)
    with pytest.raises(ValueError, match="sample_size"):
        tdann_curves_at(values, positions, sample_size=len(positions) + 1)
    with pytest.raises(ValueError, match="sample_size"):
        tdann_curves_at(values, positions, sample_size=1)
    with pytest.raises(ValueError, match="eligible must be"):
        tdann_curves_at(values, positions, eligible=np.ones(3, dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        tdann_curves_at(values, positions, eligible=np.ones(len(positions)))
    with pytest.raises(ValueError, match="first sample has no unit pair"):
        tdann_curves_at(values, positions, eligible=np.arange(len(positions)) == 0)
    with pytest.raises(ValueError, match="first sample has no unit pair"):
        tdann_curves_at(values, positions * 10, distance_cutoff=1.0)
