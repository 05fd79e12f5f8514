"""Topoformer's generic topography statistic (Binhuraib et al. 2024; TahaBinhuraib/topoformer, cookbook).

Its "TGI" of a layer: the Pearson correlations between units' responses across stimuli, against the units' sheet
distances; for each distance cutoff d in 0.1, 0.2, …, 0.8, the statistic is −Spearman ρ(correlation, distance) over
every ordered unit pair with 0 < distance ≤ d (at most `n_samples` of them, drawn at random), and the TGI is the mean
over the cutoffs. Positive when nearby units respond alike.

Distances follow Topoformer's `Constraints(…, wrap=True)`: unit i of a side-s square sheet sits at
(i // s, i % s) / s, each axis's separation |Δ| is wrapped to 1 − |Δ| when above 0.5 (a torus of side 1), and the
distance is √(Δrow² + Δcol²); the same float operations make the same pairs fall inside a cutoff. An H×W sheet is a
torus of area 1 here (s = √(H·W), axis periods H/s and W/s), which is Topoformer's sheet when H = W.
Topoformer draws its pairs with NumPy's global generator, unseeded; here a `RandomState(seed)` makes the same draws as
the global generator seeded with `seed` (one draw per cutoff, in order, even when every pair is kept).
NaN responses count as 0 and a constant unit's correlations as 0, as in Topoformer. A cutoff that keeps no pair, or
pairs at one distance only, has no rank correlation: its statistic and the TGI are NaN (a sheet of fewer than 100
units has no pair within 0.1: a step is 1/√(H·W)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from toponets_exp.brain.stats import ArrayLike, as_float64

TGI_CUTOFFS = tuple(float(d) for d in np.linspace(0.1, 0.8, 8))  # Topoformer's calculate_tgi
TGI_PAIRS = 100_000                                              # pairs drawn per cutoff (n_samples)


@dataclass(frozen=True)
class TopoformerResult:
    """The TGI of a layer, the statistic at each cutoff, and how many ordered pairs each cutoff kept."""

    tgi: float
    cutoffs: tuple[float, ...]
    per_cutoff: list[float]
    pairs: list[int]


def torus_distances(sheet: tuple[int, int]) -> np.ndarray:
    """(H·W, H·W) distances between the units of a row-major H×W sheet on a torus of area 1 (see the module)."""
    h, w = (int(v) for v in sheet)
    side = np.sqrt(h * w)
    rows, cols = np.divmod(np.arange(h * w), w)

    def separation(index: np.ndarray, period: float) -> np.ndarray:
        coord = index / side
        d = np.abs(coord[:, None] - coord[None, :])
        return np.where(d > period / 2, period - d, d)

    return np.sqrt(separation(rows, h / side) ** 2 + separation(cols, w / side) ** 2)


def unit_correlations(responses: ArrayLike) -> np.ndarray:
    """(units, units) Pearson correlations across stimuli of (stimuli, units) responses; NaN counted as 0."""
    x = as_float64(responses).copy()
    x[np.isnan(x)] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(x.T)
    corr[np.isnan(corr)] = 0.0
    return corr


def topoformer_tgi(responses: ArrayLike, sheet: tuple[int, int], cutoffs: tuple[float, ...] = TGI_CUTOFFS,
                   n_samples: int = TGI_PAIRS, seed: int = 0) -> TopoformerResult:
    """Topoformer's TGI of a layer from its (stimuli, units) responses, units row-major on the H×W sheet."""
    x = as_float64(responses)
    h, w = (int(v) for v in sheet)
    if x.ndim != 2 or x.shape[1] != h * w or x.shape[0] < 2:
        raise ValueError(f"responses must be (n_stimuli >= 2, n_units) with n_units = H·W = {h * w} for "
                         f"sheet={tuple(sheet)}, got shape {x.shape}")
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"n_samples={n_samples!r} must be an integer >= 2")
    corr = unit_correlations(x).ravel()
    dist = torus_distances((h, w)).ravel()
    rng = np.random.RandomState(seed)
    per_cutoff, pairs = [], []
    for cutoff in cutoffs:
        keep = np.flatnonzero((dist <= cutoff) & (dist != 0))
        chosen = keep[rng.choice(len(keep), size=min(int(n_samples), len(keep)), replace=False)]
        pairs.append(len(keep))
        per_cutoff.append(_negative_rank_correlation(corr[chosen], dist[chosen]))
    return TopoformerResult(tgi=float(np.mean(per_cutoff)), cutoffs=tuple(float(c) for c in cutoffs),
                            per_cutoff=per_cutoff, pairs=pairs)


def _negative_rank_correlation(corr: np.ndarray, dist: np.ndarray) -> float:
    """−Spearman ρ of the z-scored correlations (as Topoformer ranks them: rounding in the z-score can tie
    neighbouring values) and the distances; NaN when either side has fewer than two distinct values."""
    if len(corr) < 2 or np.ptp(corr) == 0.0 or np.ptp(dist) == 0.0:
        return float("nan")
    return float(-stats.spearmanr((corr - corr.mean()) / corr.std(), dist)[0])
