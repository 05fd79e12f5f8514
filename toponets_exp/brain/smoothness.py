"""Topographic smoothness: how similar units are as a function of their distance on the cortical sheet.

Units are laid out row-major on an H×W sheet (unit i at row i // W, column i % W, unit spacing 1). A unit is any
vector: its flattened incoming weights, or its response profile over stimuli (see `response_profiles`). The
similarity of two units is the cosine of their vectors (0 when either is all zeros). Pairs are binned by their
Euclidean sheet distance d into unit-width bins centred on the integers, bin k = [k − ½, k + ½); bin 1 holds the
adjacent and diagonal neighbours (d = 1, √2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toponets_exp.brain.stats import ArrayLike, as_float64
from toponets_exp.brain.tdann import binned_means, curve_smoothness
from toponets_exp.topo.sheet_pca import unit_vectors

METHODS = ("near_minus_far", "max_minus_min", "tdann")
NEAR_BIN = 1
TDANN_BINS = 20  # TDANN's equal-width distance bins
MIN_BIN_FRACTION = 0.01  # bins with fewer pairs than this share are too noisy for the curve's max and min
CHUNK_ELEMENTS = 1 << 22  # gathered floats per chunk of pair cosines (2 × 32 MiB)


@dataclass(frozen=True)
class SimilarityCurve:
    """Mean cosine similarity c(d) of unit pairs per non-empty distance bin (bin centres), with pair counts."""

    distances: np.ndarray
    similarity: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class SmoothnessResult:
    """A smoothness score, the method that produced it, and the full similarity-vs-distance curve."""

    value: float
    method: str
    curve: SimilarityCurve


def response_profiles(responses: ArrayLike) -> np.ndarray:
    """Unit vectors (n_units, n_stimuli) from responses (n_stimuli, n_units), each centred over stimuli.

    The cosine of two centred profiles is the Pearson correlation of the two units' tuning, the similarity used
    for response maps (TDANN); raw ReLU responses would make every pair look similar.
    """
    x = as_float64(responses)
    if x.ndim != 2:
        raise ValueError(f"responses must be a 2-D array (n_stimuli, n_units), got shape {x.shape}")
    return (x - x.mean(axis=0)).T


def triangle_pairs(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, at row-major positions k of the strict upper triangle of an n×n matrix."""
    k = np.asarray(k, dtype=np.int64)

    def start(i: np.ndarray) -> np.ndarray:
        """Position of the first pair whose first index is i."""
        return i * n - i * (i + 1) // 2

    b = 2 * n - 1
    i = np.floor((b - np.sqrt(np.maximum(b * b - 8.0 * k, 0.0))) / 2.0).astype(np.int64)
    i = np.clip(i, 0, n - 2)
    i = np.where(start(i) > k, i - 1, i)  # correct a float rounding step either way
    i = np.where(start(i + 1) <= k, i + 1, i)
    return i, k - start(i) + i + 1


def _near_pairs(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair in the nearest bin: offsets (0, 1), (1, −1), (1, 0), (1, 1) on the H×W sheet."""
    rows, cols = np.divmod(np.arange(h * w), w)
    i_all, j_all = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        ok = (rows + dr < h) & (cols + dc >= 0) & (cols + dc < w)
        i_all.append(np.flatnonzero(ok))
        j_all.append((rows[ok] + dr) * w + cols[ok] + dc)
    return np.concatenate(i_all), np.concatenate(j_all)


def _sheet_distances(i: np.ndarray, j: np.ndarray, w: int) -> np.ndarray:
    """Euclidean distance between units i and j on a sheet of width w."""
    ri, ci = np.divmod(i, w)
    rj, cj = np.divmod(j, w)
    return np.hypot(ri - rj, ci - cj)


def sample_pairs(sheet: tuple[int, int], max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit pairs (i, j), i < j: all of them if at most max_pairs, else a seeded sample of at most max_pairs.

    The sample stratifies on the nearest bin: its pairs (about 4·H·W) are all kept, up to half the budget, so
    c(1) stays precise on large sheets; the rest of the budget is a uniform sample without replacement of all
    pairs, from which nearest-bin pairs are dropped. Each bin's mean is thus an unbiased estimate.
    """
    if int(max_pairs) < 1:
        raise ValueError(f"max_pairs={max_pairs} must be a positive integer")
    max_pairs = int(max_pairs)
    h, w = sheet
    n = h * w
    total = n * (n - 1) // 2
    if total <= max_pairs:
        return np.triu_indices(n, 1)
    rng = np.random.default_rng(seed)
    near_i, near_j = _near_pairs(h, w)
    keep = min(near_i.size, max_pairs // 2)
    if keep < near_i.size:
        pick = np.sort(rng.choice(near_i.size, size=keep, replace=False))
        near_i, near_j = near_i[pick], near_j[pick]
    far_i, far_j = triangle_pairs(np.sort(rng.choice(total, size=max_pairs - keep, replace=False)), n)
    far = np.rint(_sheet_distances(far_i, far_j, w)) != NEAR_BIN
    return np.concatenate([near_i, far_i[far]]), np.concatenate([near_j, far_j[far]])


def _pair_cosines(units: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine of unit-norm rows i and j: from the Gram matrix when the pairs cover most of it, else gathered rows
    in chunks that bound memory."""
    if units.shape[0] ** 2 <= 4 * i.size:
        return (units @ units.T)[i, j]
    chunk = max(1, CHUNK_ELEMENTS // units.shape[1])
    return np.concatenate([
        np.einsum("pd,pd->p", units[i[s:s + chunk]], units[j[s:s + chunk]]) for s in range(0, i.size, chunk)
    ])


def pair_similarities(vectors: ArrayLike, sheet: tuple[int, int], max_pairs: int = 200_000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(sheet distance, cosine similarity) of the unit pairs chosen by `sample_pairs`."""
    units = unit_vectors(as_float64(vectors), sheet)
    h, w = (int(s) for s in sheet)
    i, j = sample_pairs((h, w), max_pairs, seed)
    return _sheet_distances(i, j, w), _pair_cosines(units, i, j)


def _curve(distances: np.ndarray, cosines: np.ndarray) -> SimilarityCurve:
    """Bin pair cosines by rounded distance into a SimilarityCurve of the non-empty bins."""
    bins = np.rint(distances).astype(np.int64)
    counts = np.bincount(bins)
    sums = np.bincount(bins, weights=cosines)
    full = np.flatnonzero(counts)
    return SimilarityCurve(full.astype(np.float64), sums[full] / counts[full], counts[full])


def similarity_by_distance(vectors: ArrayLike, sheet: tuple[int, int], max_pairs: int = 200_000,
                           seed: int = 0) -> SimilarityCurve:
    """Mean cosine similarity of unit pairs per unit-width bin of sheet distance (see module docstring)."""
    return _curve(*pair_similarities(vectors, sheet, max_pairs, seed))


def reliable_bins(curve: SimilarityCurve) -> np.ndarray:
    """Mask of the bins holding at least MIN_BIN_FRACTION of the pairs (drops the sparse far corners)."""
    return curve.counts >= max(1.0, MIN_BIN_FRACTION * curve.counts.sum())


def largest_outward_drop(similarity: np.ndarray) -> float:
    """max over bins i < j of c_i − c_j: how far similarity falls going outward (0 for a curve that never falls)."""
    peak_before = np.maximum.accumulate(similarity)
    return float(max(0.0, np.max(peak_before - similarity)))


def smoothness(vectors: ArrayLike, sheet: tuple[int, int], method: str = "near_minus_far",
               max_pairs: int = 200_000, seed: int = 0) -> SmoothnessResult:
    """One topographic smoothness score of units on the sheet, with the similarity curve it came from.

    Every method rewards similarity that falls with distance and none rewards a curve that rises
    (c(d) = mean cosine in distance bin d; D = √((H−1)² + (W−1)²) the sheet diagonal):
      near_minus_far: c_near − c_far, c_near = c(1) (adjacent and diagonal neighbours), c_far the mean cosine
          over all pairs farther apart than D/2. ≈0 without topography, negative when neighbours disagree more
          than distant units, at most 2. The default: it is defined for signed similarities (weights, profiles).
      max_minus_min: the largest fall of c(d) going outward, max over bins i < j of c(i) − c(j), over bins holding
          at least 1% of the pairs (sparse corner bins excluded): max − min for a falling curve, 0 for a rising
          one; in [0, 2].
      tdann: TDANN's curve statistic (brain.tdann.curve_smoothness: (max − first) / max, cut at the first empty
          bin) of the dissimilarity 1 − cos against distance in TDANN's 20 equal-width bins: 1 when neighbours
          are alike and distant units differ, ≈0 without structure; in [0, 1].
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not a smoothness method; accepted: {', '.join(METHODS)}")
    distances, cosines = pair_similarities(vectors, sheet, max_pairs, seed)
    curve = _curve(distances, cosines)
    if method == "near_minus_far":
        h, w = (int(s) for s in sheet)
        far = distances > np.hypot(h - 1, w - 1) / 2.0
        near = np.rint(distances) == NEAR_BIN
        value = cosines[near].mean() - cosines[far].mean()
    elif method == "max_minus_min":
        value = largest_outward_drop(curve.similarity[reliable_bins(curve)])
    else:
        value = curve_smoothness(binned_means(distances, 1.0 - cosines, TDANN_BINS)[0])
    return SmoothnessResult(float(value), method, curve)
