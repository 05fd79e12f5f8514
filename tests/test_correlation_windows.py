"""Correlation vs distance in windows of units against a re-derivation of neuroailab/TDANN (commit 80c585d):
utils/spatial_utils.py::get_adjacent_windows and ::indices_within_limits (numpy's global RNG replaced by one seeded
Generator, drawn in the same order), maps/__init__.py::TissueMap.correlation_over_distance_plot (np.corrcoef and
pdist per window, lower triangles, NaN pairs dropped, the first window's edges) and ::agg_by_distance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from toponets_exp.brain import correlation_smoothness_at, correlation_windows_at
from toponets_exp.brain.correlation_windows import adjacent_windows


@dataclass
class Window:
    indices: np.ndarray
    lims: list
    num_units: int


def layer_positions(channels: int, side: int, spacing: float, seed: int) -> np.ndarray:
    """(C·side², 2) mm positions, channel-major: unit (c, h, w) at (w, h)·spacing, plus a uniform ±spacing/2."""
    _, h, w = np.meshgrid(np.arange(channels), np.arange(side), np.arange(side), indexing="ij")
    anchors = np.stack([w.ravel(), h.ravel()], axis=1) * spacing
    return anchors + np.random.default_rng(seed).uniform(-spacing / 2, spacing / 2, anchors.shape)


def smooth_responses(positions: np.ndarray, n_stimuli: int, seed: int) -> np.ndarray:
    """(n_stimuli, N) responses: random plane waves of ~1–2 rad/mm over the sheet plus noise, so near units agree."""
    rng = np.random.default_rng(seed)
    freqs = rng.normal(size=(30, 2)) * 1.2
    waves = np.cos(positions @ freqs.T + rng.uniform(0, 2 * np.pi, 30))  # (N, 30)
    return rng.normal(size=(n_stimuli, 30)) @ waves.T + 0.5 * rng.normal(size=(n_stimuli, len(positions)))


def get_adjacent_windows(positions, width, window_number_limit, unit_number_limit, edge_buffer, rng):
    """TDANN's get_adjacent_windows, shift None and spacing 1, `rng` in place of np.random."""
    num_bins = np.floor_divide(np.ptp(positions, axis=0), width).astype(int)
    shift = [0, 0]
    x_bin_starts = np.linspace(np.min(positions[:, 0]), np.max(positions[:, 0]) - width, num_bins[0]) + shift[0]
    y_bin_starts = np.linspace(np.min(positions[:, 1]), np.max(positions[:, 1]) - width, num_bins[1]) + shift[1]
    if edge_buffer:
        x_bin_starts = x_bin_starts[edge_buffer:-edge_buffer]
        y_bin_starts = y_bin_starts[edge_buffer:-edge_buffer]
    delta_per_side = width * (1.0 - 1.0) / 2
    windows = []
    for x_start in x_bin_starts:
        xlims = [x_start + delta_per_side, x_start + width - delta_per_side]
        for y_start in y_bin_starts:
            ylims = [y_start + delta_per_side, y_start + width - delta_per_side]
            indices = np.where((positions[:, 0] >= xlims[0]) & (positions[:, 0] <= xlims[1])
                               & (positions[:, 1] >= ylims[0]) & (positions[:, 1] <= ylims[1]))[0]
            if isinstance(unit_number_limit, int) and len(indices) > unit_number_limit:
                indices = rng.choice(indices, size=(unit_number_limit,), replace=False)
            if len(indices) < 2:
                continue
            windows.append(Window(indices=indices, lims=[xlims, ylims], num_units=len(indices)))
    if window_number_limit is not None and len(windows) > window_number_limit:
        objects = np.empty(len(windows), dtype=object)
        objects[:] = windows
        windows = rng.choice(objects, size=(window_number_limit,), replace=False).tolist()
    return windows


def agg_by_distance(distances, values, bin_edges, num_bins):
    """TDANN's agg_by_distance (means, and here the pair count of each bin)."""
    order = np.argsort(distances)
    d, v = distances[order], values[order]
    if bin_edges is None:
        bin_edges = np.histogram_bin_edges(d, bins=num_bins)
    means, counts = np.zeros(len(bin_edges) - 1), np.zeros(len(bin_edges) - 1)
    for i in range(1, len(bin_edges)):
        inside = v[(d >= bin_edges[i - 1]) & (d < bin_edges[i])]
        counts[i - 1] = inside.shape[0]
        means[i - 1] = np.nan if inside.shape[0] == 0 else np.nanmean(inside)
    return means, counts, bin_edges


def correlation_over_distance(features, positions, windows, num_line_bins=15):
    """The per-window profiles of correlation_over_distance_plot, their edges and pair counts."""
    lower = lambda x: x[np.tril_indices_from(x, k=-1)]  # noqa: E731 (array_utils.lower_tri)
    profiles, counts, bin_edges = [], [], None
    for window in windows:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = lower(np.corrcoef(features[:, window.indices].T))
        distances = lower(squareform(pdist(positions[window.indices])))
        nan_mask = np.isnan(corr)
        means, n, bin_edges = agg_by_distance(distances[~nan_mask], corr[~nan_mask], bin_edges, num_line_bins)
        profiles.append(means)
        counts.append(n)
    return bin_edges, np.stack(profiles), np.stack(counts)


def tdann_curve_smoothness(curve):
    """spatial_utils.smoothness, NaN for a curve whose first bin is empty (there TDANN's np.ptp raises)."""
    nans = np.where(np.isnan(curve))[0]
    curve = curve[: nans[0]] if len(nans) else curve
    if curve.size == 0:
        return np.nan
    return 1.0 if np.ptp(curve) == 0 else (np.max(curve) - curve[0]) / np.max(curve)


@pytest.mark.parametrize("limits", [dict(window_number_limit=20, unit_number_limit=15, edge_buffer=1),
                                    dict(window_number_limit=None, unit_number_limit=5000, edge_buffer=0)])
def test_windows_and_profiles_equal_tdann(limits: dict) -> None:
    """An 8 × 12 × 12 layer at 1 mm spacing, 1.5 mm windows; 5% of the units respond to nothing (NaN pairs)."""
    positions = layer_positions(8, 12, 1.0, seed=0)
    features = smooth_responses(positions, 40, seed=1)
    features[:, ::20] = 0.0
    reference = get_adjacent_windows(positions, 1.5, rng=np.random.default_rng(7), **limits)
    ours = adjacent_windows(positions, 1.5, rng=np.random.default_rng(7), **limits)
    assert [w.indices.tolist() for w in reference] == [w.tolist() for w in ours]
    per_axis = np.floor_divide(np.ptp(positions, axis=0), 1.5)  # 7 × 7 windows; with the buffer 5 × 5, 20 drawn
    assert len(ours) == (20 if limits["window_number_limit"] else np.prod(per_axis)) and per_axis.tolist() == [7, 7]
    edges, profiles, counts = correlation_over_distance(features, positions, reference)
    our_edges, our_profiles = correlation_windows_at(features, positions, 1.5, num_bins=15, seed=7, **limits)
    np.testing.assert_allclose(our_edges, edges, rtol=1e-13)
    np.testing.assert_allclose(our_profiles, profiles, rtol=1e-10, atol=1e-13, equal_nan=True)

    ticks = edges[:-1] + np.diff(edges)[0] / 2
    full = counts.sum(axis=0) > 0
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(profiles, axis=0)
    result = correlation_smoothness_at(features, positions, "near_minus_far", 1.5, seed=7, **limits)
    np.testing.assert_allclose(result.curve.distances, ticks[full], rtol=1e-13)
    np.testing.assert_allclose(result.curve.similarity, mean[full], rtol=1e-10)
    np.testing.assert_array_equal(result.curve.counts, counts.sum(axis=0)[full])
    everywhere = np.all(np.isfinite(profiles), axis=0)  # where TDANN's plain mean over windows is defined
    assert everywhere.sum() >= 5
    np.testing.assert_allclose(mean[everywhere], np.mean(profiles, axis=0)[everywhere], rtol=1e-12)
    far = mean[full & (ticks > edges[-1] / 2)]
    assert result.value == pytest.approx(mean[0] - far.mean(), rel=1e-10)
    assert result.value > 0.1  # near units correlate more than far ones

    drop = correlation_smoothness_at(features, positions, "max_minus_min", 1.5, seed=7, **limits)
    reliable = result.curve.similarity[result.curve.counts >= 0.01 * result.curve.counts.sum()]
    n = len(reliable)
    expected = max(0.0, max(reliable[i] - reliable[j] for i in range(n) for j in range(i + 1, n)))
    assert drop.value == pytest.approx(expected, rel=1e-10)
    tdann = correlation_smoothness_at(features, positions, "tdann", 1.5, seed=7, **limits)
    assert tdann.value == pytest.approx(np.nanmean([tdann_curve_smoothness(1.0 - p) for p in profiles]), rel=1e-10)


def test_a_first_window_without_pairs_takes_the_next_windows_edges() -> None:
    positions = layer_positions(4, 8, 1.0, seed=2)
    features = smooth_responses(positions, 20, seed=3)
    windows = get_adjacent_windows(positions, 1.5, None, None, 0, np.random.default_rng(0))
    features[:, windows[0].indices] = 1.0  # TDANN would bin every window in [0, 1] (edges of no distances)
    edges, profiles, _ = correlation_over_distance(features, positions, windows[1:])
    our_edges, our_profiles = correlation_windows_at(features, positions, 1.5, unit_number_limit=None)
    assert np.all(np.isnan(our_profiles[0]))
    np.testing.assert_allclose(our_edges, edges, rtol=1e-13)
    np.testing.assert_allclose(our_profiles[1:], profiles, rtol=1e-10, atol=1e-13, equal_nan=True)


def test_bad_input() -> None:
    positions = layer_positions(2, 4, 1.0, seed=4)
    features = smooth_responses(positions, 10, seed=5)
    with pytest.raises(ValueError, match="features must be"):
        correlation_windows_at(features[0], positions)
    with pytest.raises(ValueError, match="features must be"):
        correlation_windows_at(features[:1], positions[:1])
    with pytest.raises(ValueError, match="positions must be"):
        correlation_windows_at(features, positions[1:])
    with pytest.raises(ValueError, match="finite"):
        correlation_windows_at(np.where(features > 1, np.nan, features), positions)
    with pytest.raises(ValueError, match="finite"):
        correlation_windows_at(features, np.where(positions > 2, np.inf, positions))
    with pytest.raises(ValueError, match="width"):
        correlation_windows_at(features, positions, width=0.0)
    for name, value in (("unit_number_limit", 1), ("window_number_limit", 0), ("edge_buffer", -1), ("num_bins", 0),
                        ("unit_number_limit", 2.5)):
        with pytest.raises(ValueError, match=name):
            correlation_windows_at(features, positions, **{name: value})
    with pytest.raises(ValueError, match="no window of width"):
        correlation_windows_at(features, positions, width=100.0)
    with pytest.raises(ValueError, match="finite correlation"):
        correlation_windows_at(np.ones_like(features), positions)
    with pytest.raises(ValueError, match="method"):
        correlation_smoothness_at(features, positions, method="pearson")
