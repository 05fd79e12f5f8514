"""TDANN's smoothness of a scalar map over the sheet (Margalit et al., Neuron 2024; neuroailab/TDANN, spacetorch).

A scalar map gives one number per unit (a category-selectivity t map, a preference map), row-major on the H×W
sheet (unit i at row i // W, column i % W, spacing 1). For unit pairs, |v_i − v_j| is averaged in `num_bins`
equal-width bins of sheet distance spanning the smallest to the largest pair distance; bins are half-open
[e_k, e_k+1), so a pair at exactly the largest distance falls outside the last bin, and an empty bin is NaN.
The curve's smoothness (TDANN's `spatial_utils.smoothness`): cut the curve at its first NaN bin; a flat curve scores
1; otherwise (max(curve) − curve[0]) / max(curve): 1 when nearby units agree and far ones differ, ≈0 without
spatial structure. TDANN draws `num_samples` random subsets of `sample_size` units, optionally drops pairs farther
apart than `distance_cutoff`, reuses the first sample's bin edges for the others, and averages the per-sample
smoothness; one sample of every unit (the default here) is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from toponets_exp.brain.stats import ArrayLike, as_float64

PAIR_CHUNK = 1 << 22  # pairs per chunk of the distance/difference computation (bounds memory on large sheets)


def binned_means(distances: np.ndarray, values: np.ndarray, num_bins: int = 20,
                 edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of `values` per equal-width half-open distance bin (NaN when empty), and the bin edges.

    Edges default to `num_bins` equal bins from min to max distance (numpy's histogram edges); a pair at exactly
    the last edge is outside every bin, as in TDANN's `agg_by_distance`.
    """
    if edges is None:
        edges = np.histogram_bin_edges(distances, bins=num_bins)
    return _means(*_bin_sums(distances, values, edges)), edges


def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-bin means, NaN for an empty bin."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _bin_sums(distances: np.ndarray, values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin sum of values and pair count, bins [edges[k], edges[k+1])."""
    n_bins = len(edges) - 1
    index = np.searchsorted(edges, distances, side="right") - 1
    inside = (index >= 0) & (index < n_bins)
    counts = np.bincount(index[inside], minlength=n_bins).astype(np.float64)
    sums = np.bincount(index[inside], weights=values[inside], minlength=n_bins)
    return sums, counts


def curve_smoothness(curve: ArrayLike) -> float:
    """TDANN's smoothness of a curve that tracks change with distance: (max − first) / max, cut at the first NaN.

    1 for a flat curve; NaN when the first bin is already empty.
    """
    c = as_float64(curve).ravel()
    c = c[: leading_bins(c)]
    if c.size == 0:
        return float("nan")
    if np.ptp(c) == 0.0:
        return 1.0
    return float((c.max() - c[0]) / c.max())


def _positions(sheet: tuple[int, int]) -> np.ndarray:
    """(H·W, 2) row/column positions of the units, row-major."""
    h, w = (int(s) for s in sheet)
    rows, cols = np.divmod(np.arange(h * w), w)
    return np.stack([rows, cols], axis=1).astype(np.float64)


def _pair_chunks(n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs (i, j), i < j, of n units in blocks of consecutive first indices, about PAIR_CHUNK pairs each."""
    rows = max(1, PAIR_CHUNK // max(n, 1))
    for start in range(0, n - 1, rows):
        first = np.arange(start, min(start + rows, n - 1))
        counts = n - 1 - first
        i = np.repeat(first, counts)
        offsets = np.repeat(np.cumsum(counts) - counts, counts)
        yield i, np.arange(counts.sum()) - offsets + i + 1


def _pair_values(values: np.ndarray, positions: np.ndarray, distance_cutoff: float | None,
                 period: float | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(sheet distance, |value difference|) of every pair of units, in chunks; pairs beyond the cutoff dropped; with a
    `period`, the difference of cyclic values, wrapped to at most period / 2."""
    for i, j in _pair_chunks(len(values)):
        d = np.hypot(*(positions[i] - positions[j]).T)
        diff = np.abs(values[i] - values[j])
        if period is not None:
            diff = np.mod(diff, period)
            diff = np.minimum(diff, period - diff)
        if distance_cutoff is not None:
            keep = d <= distance_cutoff
            d, diff = d[keep], diff[keep]
        yield d, diff


def _sample_curve(values: np.ndarray, positions: np.ndarray, num_bins: int, distance_cutoff: float | None,
                  edges: np.ndarray | None, period: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The |difference|-vs-distance curve of one sample of units, and its bin edges (computed when None)."""
    if edges is None:  # numpy's equal-width edges depend only on the smallest and largest distance
        lo, hi = np.inf, -np.inf
        for d, _ in _pair_values(values, positions, distance_cutoff, period):
            if d.size:
                lo, hi = min(lo, d.min()), max(hi, d.max())
        if not np.isfinite(lo):
            raise ValueError(f"no unit pair lies within distance_cutoff={distance_cutoff}")
        edges = np.histogram_bin_edges(np.array([lo, hi]), bins=num_bins)
    sums, counts = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for d, diff in _pair_values(values, positions, distance_cutoff, period):
        s, c = _bin_sums(d, diff, edges)
        sums += s
        counts += c
    return _means(sums, counts), edges


def tdann_curves(values: ArrayLike, sheet: tuple[int, int], num_bins: int = 20, num_samples: int = 1,
                 sample_size: int | None = None, distance_cutoff: float | None = None, seed: int = 0,
                 period: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bin edges and the (num_samples, num_bins) |difference|-vs-distance curves of TDANN's smoothness (cyclic
    values such as orientation preferences: `period`, e.g. 180, and differences wrapped to at most period / 2)."""
    h, w = (int(s) for s in sheet)
    v = as_float64(values).ravel()
    if h < 1 or w < 1 or h * w < 2:
        raise ValueError(f"sheet={tuple(sheet)} must be (H, W) with H, W >= 1 and at least 2 units")
    if v.size != h * w:
        raise ValueError(f"values must hold one number per unit, H·W = {h * w} for sheet={tuple(sheet)}, "
                         f"got {v.size}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain NaN or infinite entries; TDANN smoothness needs a finite map")
    if isinstance(num_bins, bool) or int(num_bins) != num_bins or num_bins < 1:
        raise ValueError(f"num_bins={num_bins!r} must be a positive integer")
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples={num_samples!r} must be a positive integer")
    if sample_size is not None and not 2 <= int(sample_size) <= v.size:
        raise ValueError(f"sample_size={sample_size!r} must be between 2 and the {v.size} units (or None: all)")
    if period is not None and not period > 0:
        raise ValueError(f"period={period!r} must be positive (or None for values that are not cyclic)")
    if distance_cutoff is not None and not distance_cutoff > 0:
        raise ValueError(f"distance_cutoff={distance_cutoff!r} must be a positive distance (or None)")
    positions = _positions((h, w))
    rng = np.random.default_rng(seed)
    edges, curves = None, []
    for _ in range(int(num_samples)):
        units = (np.arange(v.size) if sample_size is None
                 else rng.choice(v.size, size=int(sample_size), replace=False))
        curve, edges = _sample_curve(v[units], positions[units], int(num_bins), distance_cutoff, edges, period)
        curves.append(curve)
    return edges, np.stack(curves)


def leading_bins(curve: np.ndarray) -> int:
    """How many bins of a curve precede its first empty (NaN) bin: what TDANN's statistic sees."""
    nan = np.flatnonzero(np.isnan(curve))
    return int(nan[0]) if nan.size else len(curve)


def tdann_smoothness(values: ArrayLike, sheet: tuple[int, int], num_bins: int = 20, num_samples: int = 1,
                     sample_size: int | None = None, distance_cutoff: float | None = None, seed: int = 0,
                     period: float | None = None) -> float:
    """TDANN's smoothness of a scalar map (one value per unit, row-major on `sheet`); see the module docstring.

    sample_size None takes every unit (then every sample is the same); distance_cutoff None keeps every pair; period
    (e.g. 180 for orientation in degrees) wraps the differences of cyclic values to at most period / 2.
    """
    _, curves = tdann_curves(values, sheet, num_bins, num_samples, sample_size, distance_cutoff, seed, period)
    return mean_smoothness(curves)


def mean_smoothness(curves: np.ndarray) -> float:
    """The mean of the per-sample curve smoothness (NaN samples left out; NaN when every sample is NaN)."""
    scores = [curve_smoothness(curve) for curve in curves]
    return float(np.nanmean(scores)) if np.any(np.isfinite(scores)) else float("nan")
