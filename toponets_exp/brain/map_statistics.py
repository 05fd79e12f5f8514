"""Spatial statistics of 2-D maps on the sheet: Moran's I autocorrelation, SSIM and Pearson between maps."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from toponets_exp.brain.stats import ArrayLike, as_float64

SSIM_WINDOW = 7  # uniform window side of Wang et al.'s SSIM as skimage implements it by default
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _map(values: ArrayLike, name: str = "map") -> np.ndarray:
    """A validated finite 2-D float64 map."""
    x = as_float64(values)
    if x.ndim != 2 or x.size < 2:
        raise ValueError(f"{name} must be a 2-D array with at least 2 cells, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values; spatial statistics need a finite map")
    return x


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two validated maps of the same shape."""
    a, b = _map(a, "first map"), _map(b, "second map")
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same shape to be compared, got {a.shape} and {b.shape}")
    return a, b


NEIGHBOURS = {  # (row, column) offsets of a cell's neighbours
    "rook": ((-1, 0), (1, 0), (0, -1), (0, 1)),
    "queen": ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
}
MORAN_WEIGHTS = ("binary", "row")


def _neighbour_sums(z: np.ndarray, neighbours: str) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: the sum of z over its neighbours inside the map (no wrap-around), and how many there are."""
    h, w = z.shape
    padded = np.pad(z, 1)
    inside = np.pad(np.ones_like(z), 1)
    sums, degree = np.zeros_like(z), np.zeros_like(z)
    for dr, dc in NEIGHBOURS[neighbours]:
        sums += padded[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        degree += inside[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
    return sums, degree


def morans_i(values: ArrayLike, neighbours: str = "rook", weights: str = "binary") -> float:
    """Moran's I of a 2-D map: (N / S0) · Σ_ij w_ij z_i z_j / Σ_i z_i², z = x − x̄, S0 = Σ_ij w_ij.

    w_ij links each cell to its `neighbours` inside the map ("rook": 4 sides; "queen": also the 4 diagonals, no
    wrap-around); `weights` "binary" gives every link 1, "row" gives 1/(the cell's number of neighbours), so each row
    sums to 1 and S0 = N. The default (rook, binary) is this project's; (queen, row) is TopoLM's, which calls
    esda's `Moran(t.flatten(), lat2W(h, w, rook=False)).I` (row standardisation is esda's default).
    +1 for smooth maps (a linear ramp tends to 1 as the map grows), ≈ −1/(N−1) for spatially random values,
    −1 for a rook checkerboard. NaN for a constant map.
    """
    if neighbours not in NEIGHBOURS:
        raise ValueError(f"neighbours={neighbours!r} must be one of {sorted(NEIGHBOURS)}")
    if weights not in MORAN_WEIGHTS:
        raise ValueError(f"weights={weights!r} must be one of {list(MORAN_WEIGHTS)}")
    z = _map(values)
    z = z - z.mean()
    sums, degree = _neighbour_sums(z, neighbours)
    denom = np.sum(z * z)
    if denom == 0.0:
        return float("nan")
    if weights == "row":
        return float(np.sum(z * sums / degree) / denom)
    return float(z.size / np.sum(degree) * np.sum(z * sums) / denom)


TOPOLM_MORAN = {"neighbours": "queen", "weights": "row"}  # TopoLM's eval/moran.py (esda, lat2W(rook=False))


def t_map_morans(t: np.ndarray) -> tuple[float, float]:
    """Moran's I of a t map in this project's convention and in TopoLM's; both NaN when some t is infinite."""
    if not np.all(np.isfinite(t)):
        return float("nan"), float("nan")
    return morans_i(t), morans_i(t, **TOPOLM_MORAN)


def ssim_window(shape: tuple[int, int]) -> int:
    """The SSIM window side: 7, or the largest odd side that fits a smaller map (at least 3)."""
    side = min(SSIM_WINDOW, *shape)
    side -= 1 - side % 2
    if side < 3:
        raise ValueError(f"SSIM needs maps of at least 3×3 cells, got shape {tuple(shape)}")
    return side


def map_ssim(a: ArrayLike, b: ArrayLike) -> float:
    """Mean structural similarity of two maps (Wang et al. 2004) with a uniform window and sample covariances.

    Window: uniform, 7×7, or the largest odd square that fits (5×5 on a 5×6 map); statistics are averaged
    over every window lying fully inside the map. Constants C1 = (0.01 L)², C2 = (0.03 L)² with L the joint data
    range max(a, b) − min(a, b). This equals skimage's `structural_similarity(a, b, data_range=L,
    win_size=side)` default (uniform, use_sample_covariance=True); two identical constant maps score 1.
    """
    a, b = _pair(a, b)
    data_range = max(a.max(), b.max()) - min(a.min(), b.min())
    if data_range == 0.0:
        return 1.0
    side = ssim_window(a.shape)
    wa = sliding_window_view(a, (side, side))
    wb = sliding_window_view(b, (side, side))
    mean_a, mean_b = wa.mean(axis=(-2, -1)), wb.mean(axis=(-2, -1))
    norm = side * side / (side * side - 1.0)
    var_a = norm * ((wa * wa).mean(axis=(-2, -1)) - mean_a**2)
    var_b = norm * ((wb * wb).mean(axis=(-2, -1)) - mean_b**2)
    cov = norm * ((wa * wb).mean(axis=(-2, -1)) - mean_a * mean_b)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean())


def map_pearson(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation between two maps over their cells; NaN when either map is constant."""
    a, b = _pair(a, b)
    za, zb = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = np.sqrt(np.sum(za * za) * np.sum(zb * zb))
    return float(np.sum(za * zb) / denom) if denom > 0.0 else float("nan")
