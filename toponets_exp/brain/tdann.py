"""TDANN's smoothness of a scalar map over the cortical sheet (Margalit et al., Neuron 2024; neuroailab/TDANN,
spacetorch: maps/it_map.py::ITMap.category_smoothness, maps/v1_map.py::V1Map.metric_difference_over_distance).

A scalar map gives one number per unit (a category-selectivity t map, a preference map). Units sit at explicit
positions (N, 2) (TDANN: x and y in mm) or row-major on an H×W sheet (unit i at row i // W, column i % W, spacing 1).
For unit pairs, |v_i − v_j| is averaged in `num_bins` equal-width bins of distance spanning the smallest to the
largest pair distance; bins are half-open [e_k, e_k+1), so a pair at exactly the largest distance falls outside the
last bin, and an empty bin is NaN. Distances are computed as scipy's pdist does (√(dx² + dy²)).
The curve's smoothness (TDANN's `spatial_utils.smoothness`): cut the curve at its first NaN bin; a flat curve scores
1; otherwise (max(curve) − curve[0]) / max(curve): 1 when nearby units agree and far ones differ, ≈0 without
spatial structure. TDANN draws `num_samples` random subsets of `sample_size` units (keeping, for category maps,
only those of the drawn units whose mean response exceeds 0.5: `eligible`), drops pairs farther apart than
`distance_cutoff`, reuses the first sample's bin edges for the others, and averages the per-sample smoothness
(nanmean); one sample of every unit (the default here) is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from toponets_exp.brain.stats import ArrayLike, as_float64, unit_positions_of

PAIR_CHUNK = 1 << 22  # pairs per chunk of the distance/difference computation (bounds memory on large sheets)


def binned_means(distances: np.ndarray, values: np.ndarray, num_bins: int = 20,
                 edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of `values` per equal-width half-open distance bin (NaN when empty), and the bin edges.

    Edges default to `num_bins` equal bins from min to max distance (numpy's histogram edges); a pair at exactly
    the last edge is outside every bin, as in TDANN's `agg_by_distance`.
    """
    if edges is None:
        edges = np.histogram_bin_edges(distances, bins=num_bins)
    return bin_means(*bin_sums(distances, values, edges)), edges


def bin_means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-bin means, NaN for an empty bin."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def bin_sums(distances: np.ndarray, values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    """(H·W, 2) row/column positions of the units, row-major (distances are all the smoothness uses)."""
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
    """(distance, |value difference|) of every pair of units, in chunks; pairs beyond the cutoff dropped; with a
    `period`, the difference of cyclic values, wrapped to at most period / 2."""
    for i, j in _pair_chunks(len(values)):
        dx, dy = (positions[i] - positions[j]).T
        d = np.sqrt(dx * dx + dy * dy)  # pdist's arithmetic, so distances at a bin edge or the cutoff agree with it
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
            raise ValueError(f"the first sample has no unit pair ({len(values)} units) within "
                             f"distance_cutoff={distance_cutoff}: its bin edges are undefined")
        edges = np.histogram_bin_edges(np.array([lo, hi]), bins=num_bins)
    sums, counts = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for d, diff in _pair_values(values, positions, distance_cutoff, period):
        s, c = bin_sums(d, diff, edges)
        sums += s
        counts += c
    return bin_means(sums, counts), edges


def _check_settings(n: int, num_bins: int, num_samples: int, sample_size: int | None,
                    distance_cutoff: float | None, period: float | None) -> None:
    """Raise ValueError unless the sampling and binning settings suit a map of n units."""
    if isinstance(num_bins, bool) or int(num_bins) != num_bins or num_bins < 1:
        raise ValueError(f"num_bins={num_bins!r} must be a positive integer")
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 1:
        raise ValueError(f"num_samples={num_samples!r} must be a positive integer")
    if sample_size is not None and not 2 <= int(sample_size) <= n:
        raise ValueError(f"sample_size={sample_size!r} must be between 2 and the {n} units (or None: all)")
    if period is not None and not period > 0:
        raise ValueError(f"period={period!r} must be positive (or None for values that are not cyclic)")
    if distance_cutoff is not None and not distance_cutoff > 0:
        raise ValueError(f"distance_cutoff={distance_cutoff!r} must be a positive distance (or None)")


def _checked_map(values: ArrayLike, positions: ArrayLike,
                 eligible: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated float64 values (N,), positions (N, 2) and boolean mask (N,) or None."""
    v = as_float64(values)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"values must be a 1-D array of at least 2 units, got shape {v.shape}")
    p = unit_positions_of(positions, v.size)
    mask = None
    if eligible is not None:
        mask = np.asarray(eligible)
        if mask.dtype != bool:
            raise TypeError(f"eligible must be a boolean mask over the units, got dtype {mask.dtype}")
        if mask.shape != v.shape:
            raise ValueError(f"eligible must be ({v.size},), one flag per unit, got shape {mask.shape}")
    if not np.all(np.isfinite(v if mask is None else v[mask])):
        raise ValueError("values contain NaN or infinite entries; TDANN smoothness needs a finite map (at the "
                         "eligible units)")
    return v, p, mask


def tdann_curves_at(values: ArrayLike, positions: ArrayLike, num_bins: int = 20, num_samples: int = 1,
                    sample_size: int | None = None, distance_cutoff: float | None = None, seed: int = 0,
                    period: float | None = None, eligible: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bin edges and the (num_samples, num_bins) |difference|-vs-distance curves of TDANN's smoothness of a map
    at explicit (N, 2) positions.

    Each sample draws `sample_size` of the N units (`default_rng(seed).choice`, as TDANN, whose seed is 424), then
    keeps those with `eligible` set (TDANN: mean response > 0.5); values need only be finite at eligible units.
    `period` (e.g. 180) wraps cyclic differences to at most period / 2 (equal to TDANN's `180 − d for d ≥ 90` on
    values in [0, 180), and also right for values outside it). A later sample of fewer than 2 units is all NaN.
    """
    v, p, mask = _checked_map(values, positions, eligible)
    _check_settings(v.size, num_bins, num_samples, sample_size, distance_cutoff, period)
    rng = np.random.default_rng(seed)
    edges, curves = None, []
    for _ in range(int(num_samples)):
        units = (np.arange(v.size) if sample_size is None
                 else rng.choice(v.size, size=int(sample_size), replace=False))
        if mask is not None:
            units = units[mask[units]]
        curve, edges = _sample_curve(v[units], p[units], int(num_bins), distance_cutoff, edges, period)
        curves.append(curve)
    return edges, np.stack(curves)


def tdann_curves(values: ArrayLike, sheet: tuple[int, int], num_bins: int = 20, num_samples: int = 1,
                 sample_size: int | None = None, distance_cutoff: float | None = None, seed: int = 0,
                 period: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bin edges and the (num_samples, num_bins) |difference|-vs-distance curves of TDANN's smoothness on the
    sheet (cyclic values such as orientation preferences: `period`, e.g. 180, and differences wrapped to at most
    period / 2)."""
    h, w = (int(s) for s in sheet)
    v = as_float64(values).ravel()
    if h < 1 or w < 1 or h * w < 2:
        raise ValueError(f"sheet={tuple(sheet)} must be (H, W) with H, W >= 1 and at least 2 units")
    if v.size != h * w:
        raise ValueError(f"values must hold one number per unit, H·W = {h * w} for sheet={tuple(sheet)}, "
                         f"got {v.size}")
    return tdann_curves_at(v, _positions((h, w)), num_bins, num_samples, sample_size, distance_cutoff, seed, period)


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


def tdann_smoothness_at(values: ArrayLike, positions: ArrayLike, num_bins: int = 20, num_samples: int = 1,
                        sample_size: int | None = None, distance_cutoff: float | None = None, seed: int = 0,
                        period: float | None = None, eligible: ArrayLike | None = None) -> float:
    """TDANN's smoothness of a scalar map at explicit (N, 2) positions: the mean per-sample smoothness of
    `tdann_curves_at`'s curves (TDANN: spatial_utils.smoothness per curve, then nanmean)."""
    _, curves = tdann_curves_at(values, positions, num_bins, num_samples, sample_size, distance_cutoff, seed,
                                period, eligible)
    return mean_smoothness(curves)


def mean_smoothness(curves: np.ndarray) -> float:
    """The mean of the per-sample curve smoothness (NaN samples left out; NaN when every sample is NaN)."""
    scores = [curve_smoothness(curve) for curve in curves]
    return float(np.nanmean(scores)) if np.any(np.isfinite(scores)) else float("nan")
