"""Response correlation against distance in windows of units at explicit positions, as TDANN samples it
(neuroailab/TDANN, spacetorch: maps/__init__.py::TissueMap.correlation_over_distance_plot and get_window_indices,
utils/spatial_utils.py::get_adjacent_windows, WindowParams and agg_by_distance; Margalit et al., Neuron 2024).

Windows: squares of side `width` (position units; TDANN: mm) whose lower-left corners are ⌊ptp / width⌋ points
evenly spaced from the smallest coordinate to the largest minus `width`, per axis; `edge_buffer` drops that many
starts at both ends of each axis; a unit belongs to a window when it lies in the closed square. Going over the
windows x-major, one with more than `unit_number_limit` units keeps that many of them at random, and one left with
fewer than 2 units is dropped; then, when more than `window_number_limit` windows remain, that many are chosen at
random (in the drawn order). TDANN draws both with numpy's global, unseeded RNG; here one
`np.random.default_rng(seed)` draws them in the same order, so a run is reproducible.
Per window, the Pearson correlation (np.corrcoef) of every pair of units' response profiles (NaN pairs, from units
with constant responses, dropped) is averaged in `num_bins` equal-width half-open bins of their distance; the bin
edges are the first window's (the first with a pair; TDANN's would be [0, 1] if that window had none).
"""

from __future__ import annotations

import numpy as np

from toponets_exp.brain.smoothness import (METHODS, SimilarityCurve, SmoothnessResult, largest_outward_drop,
                                           reliable_bins)
from toponets_exp.brain.stats import ArrayLike, as_float64, unit_positions_of
from toponets_exp.brain.tdann import bin_means, bin_sums, mean_smoothness

WINDOW_WIDTH_MM = 1.5      # WindowParams().width
UNIT_NUMBER_LIMIT = 5000   # WindowParams().unit_number_limit (window_number_limit None, edge_buffer 0)
CORRELATION_BINS = 15      # correlation_over_distance_plot's num_line_bins


def adjacent_windows(positions: np.ndarray, width: float, window_number_limit: int | None,
                     unit_number_limit: int | None, edge_buffer: int, rng: np.random.Generator) -> list[np.ndarray]:
    """TDANN's get_adjacent_windows (no shift, spacing 1): the unit indices of each window, `rng` drawing the
    subsamples (see the module docstring)."""
    counts = np.floor_divide(np.ptp(positions, axis=0), width).astype(int)
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    starts = [np.linspace(lo[k], hi[k] - width, counts[k]) for k in range(2)]
    if edge_buffer:
        starts = [s[edge_buffer:-edge_buffer] for s in starts]
    windows = []
    for x0 in starts[0]:
        strip = np.flatnonzero((positions[:, 0] >= x0) & (positions[:, 0] <= x0 + width))
        y = positions[strip, 1]
        for y0 in starts[1]:
            indices = strip[(y >= y0) & (y <= y0 + width)]
            if unit_number_limit is not None and len(indices) > unit_number_limit:
                indices = rng.choice(indices, size=unit_number_limit, replace=False)
            if len(indices) >= 2:
                windows.append(indices)
    if window_number_limit is not None and len(windows) > window_number_limit:
        windows = [windows[i] for i in rng.choice(len(windows), size=window_number_limit, replace=False)]
    return windows


def window_pairs(features: np.ndarray, positions: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, response correlation) of a window's unit pairs, lower-triangle order, NaN correlations dropped."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(features[:, indices].T)
    i, j = np.tril_indices(len(indices), k=-1)
    dx, dy = (positions[indices[i]] - positions[indices[j]]).T
    c = corr[i, j]
    keep = ~np.isnan(c)
    return np.sqrt(dx * dx + dy * dy)[keep], c[keep]


def _limit(name: str, value: int | None, least: int) -> None:
    """Raise ValueError unless value is None or an integer of at least `least`."""
    if value is not None and (isinstance(value, bool) or int(value) != value or value < least):
        raise ValueError(f"{name}={value!r} must be an integer of at least {least} (or None: no limit)")


def _checked(features: ArrayLike, positions: ArrayLike, width: float, window_number_limit: int | None,
             unit_number_limit: int | None, edge_buffer: int, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 features (n_stimuli, N) and positions (N, 2)."""
    f = as_float64(features)
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] < 2:
        raise ValueError(f"features must be (n_stimuli, N) with at least 2 stimuli and 2 units, got shape {f.shape}")
    p = unit_positions_of(positions, f.shape[1])
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite entries")
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"width={width!r} must be a positive window side")
    _limit("window_number_limit", window_number_limit, 1)
    _limit("unit_number_limit", unit_number_limit, 2)
    _limit("edge_buffer", edge_buffer, 0)
    _limit("num_bins", num_bins, 1)
    return f, p


def _window_curves(features: ArrayLike, positions: ArrayLike, width: float, window_number_limit: int | None,
                   unit_number_limit: int | None, edge_buffer: int, num_bins: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges, (n_windows, num_bins) mean correlations and pair counts of the windows."""
    f, p = _checked(features, positions, width, window_number_limit, unit_number_limit, edge_buffer, num_bins)
    windows = adjacent_windows(p, width, window_number_limit, unit_number_limit, int(edge_buffer),
                               np.random.default_rng(seed))
    if not windows:
        raise ValueError(f"no window of width {width} holds 2 units (positions span {np.ptp(p, axis=0)})")
    edges = None
    profiles, counts = np.full((len(windows), int(num_bins)), np.nan), np.zeros((len(windows), int(num_bins)))
    for k, indices in enumerate(windows):
        d, c = window_pairs(f, p, indices)
        if edges is None and d.size:
            edges = np.histogram_bin_edges(d, bins=int(num_bins))
        if edges is not None:
            sums, counts[k] = bin_sums(d, c, edges)
            profiles[k] = bin_means(sums, counts[k])
    if edges is None:
        raise ValueError("no window holds a pair of units with a finite correlation (all responses constant?)")
    return edges, profiles, counts


def correlation_windows_at(features: ArrayLike, positions: ArrayLike, width: float = WINDOW_WIDTH_MM,
                           window_number_limit: int | None = None, unit_number_limit: int | None = UNIT_NUMBER_LIMIT,
                           edge_buffer: int = 0, num_bins: int = CORRELATION_BINS,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """TDANN's per-window correlation-vs-distance profiles of responses `features` (n_stimuli, N) at (N, 2)
    positions: the bin edges and (n_windows, num_bins) means (defaults: TDANN's WindowParams; module docstring)."""
    edges, profiles, _ = _window_curves(features, positions, width, window_number_limit, unit_number_limit,
                                        edge_buffer, num_bins, seed)
    return edges, profiles


def correlation_smoothness_at(features: ArrayLike, positions: ArrayLike, method: str = "near_minus_far",
                              width: float = WINDOW_WIDTH_MM, window_number_limit: int | None = None,
                              unit_number_limit: int | None = UNIT_NUMBER_LIMIT, edge_buffer: int = 0,
                              num_bins: int = CORRELATION_BINS, seed: int = 0) -> SmoothnessResult:
    """A smoothness score of the windows' correlation-vs-distance profiles, with their summary curve: bin centres
    (TDANN's ticks), mean correlation over the windows where the bin holds pairs, pairs per bin over all windows
    (bins empty in every window left out; TDANN's plain mean is NaN where any window's bin is empty).

      near_minus_far: the first bin's mean correlation minus the mean over the bins centred beyond half the largest
          distance (the last edge); NaN when the first bin is empty.
      max_minus_min: the largest fall of the curve going outward over the bins holding ≥ 1% of the pairs.
      tdann: TDANN's curve statistic of 1 − correlation per window, averaged over the windows (nanmean), as TDANN
          averages it over samples.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not a smoothness method; accepted: {', '.join(METHODS)}")
    edges, profiles, counts = _window_curves(features, positions, width, window_number_limit, unit_number_limit,
                                             edge_buffer, num_bins, seed)
    centres = edges[:-1] + np.diff(edges)[0] / 2
    pairs = counts.sum(axis=0)
    full = pairs > 0
    mean = np.nanmean(profiles[:, full], axis=0)
    curve = SimilarityCurve(centres[full], mean, pairs[full])
    if method == "near_minus_far":
        far = curve.similarity[curve.distances > edges[-1] / 2]
        value = (mean[0] if full[0] else np.nan) - (far.mean() if far.size else np.nan)
    elif method == "max_minus_min":
        value = largest_outward_drop(curve.similarity[reliable_bins(curve)])
    else:
        value = mean_smoothness(1.0 - profiles)
    return SmoothnessResult(float(value), method, curve)
