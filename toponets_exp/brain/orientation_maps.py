"""All-TNN's statistics of an orientation-preference map (Lu et al. 2025; KietzmannLab/All-TNN, all_tnn/analysis).

The map (one preferred orientation per unit, degrees, row-major on the H×W sheet) is read as All-TNN reads its peak
map: the fraction p = θ/180 in [0, 1) (180° is 0°), binned into 8 orientation bins k = floor(8p), i.e. bins that
start at the test orientations (0, 22.5, …), not centred on them. A unit without a preference (NaN) is in no bin.
- Spatial entropy (`orientation_selectivity.compute_spatial_entropies`, window_size 8): around every unit, the
  9×9 window (2·⌊8/2⌋ + 1 units a side) on the sheet wrapped as a torus; the entropy in nats of the window's bin
  counts. Units whose tuning is flat are left out of the counts (All-TNN: spread 0). All-TNN keeps the per-unit map;
  its mean over units is the summary here.
- Cluster radius (`smoothness.get_cluster_radii`, bin_size 8): the smallest r ≥ 1 whose (2r+1)² window around a unit
  (torus) holds all 8 bins; NaN when r reaches min(H, W)/2. All-TNN's summary is the plain mean over units (NaN when any
  unit has none). All-TNN's loop stores each radius at the unit half a sheet away (np.roll then a window at the
  centre); that moves no value in or out of the mean, and here each radius stays at its own unit.
- Radial power spectrum (`smoothness.fft_smoothness` and the plotted `get_radial_profile`): |F|² of the
  fftshift-ed 2-D FFT of the raw map (p, no mean subtracted, no window), averaged over rings of integer radius
  ⌊distance from the centre pixel (H//2, W//2)⌋ up to min(H, W)//2; its summary is the slope of a straight line through
  (ln(k + 1), ln power_k) over every ring k, DC included (All-TNN's `plot_fft`). All-TNN pairs the centre's row index
  with the column offsets, which is the same on its square sheets.
"""

from __future__ import annotations

import numpy as np

from toponets_exp.brain.stats import ArrayLike, as_float64

ORIENTATION_BINS = 8
ENTROPY_WINDOW = 8  # All-TNN's ENTROPY_SLIDING_WINDOW_SIZE: a window of 2·(8 // 2) + 1 = 9 units a side


def orientation_bins(preference_deg: ArrayLike, sheet: tuple[int, int], n_bins: int = ORIENTATION_BINS,
                     excluded: ArrayLike | None = None) -> np.ndarray:
    """(H, W) integer bins floor(n · (θ mod 180) / 180) of an orientation map; −1 for NaN and `excluded` units."""
    h, w = (int(v) for v in sheet)
    theta = as_float64(preference_deg).ravel()
    if theta.size != h * w:
        raise ValueError(f"the map has {theta.size} values but sheet={tuple(sheet)} has {h * w} units")
    finite = np.isfinite(theta)
    peak = np.mod(np.where(finite, theta, 0.0), 180.0) / 180.0
    bins = np.where(finite, (peak * n_bins).astype(int), -1)
    if excluded is not None:
        bins[np.asarray(excluded, dtype=bool).ravel()] = -1
    return bins.reshape(h, w)


def _window_counts(indicator: np.ndarray, r: int) -> np.ndarray:
    """Per cell, the sum of `indicator` over the (2r+1)² window around it on the torus (a window wider than the sheet
    counts cells more than once, as wrapped indices do)."""
    h, w = indicator.shape
    padded = indicator[np.ix_(np.arange(-r, h + r) % h, np.arange(-r, w + r) % w)]
    total = np.pad(padded.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    side = 2 * r + 1
    return total[side:side + h, side:side + w] - total[:h, side:side + w] - total[side:side + h, :w] + total[:h, :w]


def spatial_entropy_map(bins: np.ndarray, n_bins: int = ORIENTATION_BINS,
                        window: int = ENTROPY_WINDOW) -> np.ndarray:
    """(H, W) entropy (nats) of the orientation bins in the torus window of side 2·(window // 2) + 1 around each unit;
    NaN where the window holds no binned unit."""
    r = int(window) // 2
    counts = np.stack([_window_counts((bins == b).astype(np.int64), r) for b in range(n_bins)]).astype(np.float64)
    total = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / total
        terms = np.where(counts > 0, -p * np.log(np.where(counts > 0, p, 1.0)), 0.0)
    return np.where(total > 0, terms.sum(axis=0), np.nan)


def cluster_radii(bins: np.ndarray, n_bins: int = ORIENTATION_BINS) -> np.ndarray:
    """(H, W) smallest r ≥ 1 whose torus window (2r+1)² around each unit holds every bin; NaN when r reaches
    min(H, W) / 2 first."""
    h, w = bins.shape
    radius = np.full((h, w), np.nan)
    indicators = [(bins == b).astype(np.int64) for b in range(n_bins)]
    r = 1
    while r < min(h, w) / 2 and np.isnan(radius).any():
        complete = np.all([_window_counts(ind, r) > 0 for ind in indicators], axis=0)
        radius[np.isnan(radius) & complete] = r
        r += 1
    return radius


def radial_power_profile(values: ArrayLike) -> np.ndarray:
    """Mean FFT power |F|² of a 2-D map per ring of integer radius around the centred DC pixel, up to min(H, W)//2."""
    x = as_float64(values)
    if x.ndim != 2 or min(x.shape) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"the map must be a finite 2-D array at least 2×2, got shape {x.shape}")
    power = np.abs(np.fft.fftshift(np.fft.fft2(x))) ** 2
    rows, cols = np.indices(x.shape)
    centre = np.array(x.shape) // 2
    ring = np.sqrt((cols - centre[1]) ** 2 + (rows - centre[0]) ** 2).astype(np.int32)
    inside = ring <= min(centre)
    return np.bincount(ring[inside], power[inside]) / np.bincount(ring[inside])


def spectrum_slope(profile: ArrayLike) -> float:
    """The slope of ln power against ln(ring + 1) over every ring (All-TNN's log-log fit); NaN when a ring has no
    power."""
    p = as_float64(profile)
    if np.any(p <= 0):
        return float("nan")
    return float(np.polyfit(np.log(np.arange(1, len(p) + 1)), np.log(p), 1)[0])
