"""Pinwheels of an orientation map, as TDANN's detector counts them (neuroailab/TDANN, maps/pinwheel_detector.py).

The map is an (H, W) image of preferred orientations in degrees (period 180), row 0 at the top. TDANN's winding number
at an interior pixel walks its 8 neighbours NW, N, NE, E, SE, S, SW, W (clockwise as the image is drawn) and sums the
7 steps between consecutive ones, each wrapped to [−90, 90) by ((a − b + 90) mod 180) − 90, in turns (÷ 360). TDANN
leaves the ring open (no W → NW step), so an ideal ±½ singularity scores ±0.4375 and the pixels whose ring passes
through it score about as much: one pinwheel is a blob of a few pixels. `closed=True` adds the last step (then the
winding number is a multiple of ½ and a singularity is one pixel: use `min_pixels=1`). Border pixels score 0 and a
ring with a NaN scores NaN. Pixels above `threshold` (0.3) and below −threshold are grouped into 8-connected
components; a component of at least `min_pixels` (2) is one pinwheel. TDANN's "positive" pinwheels (orientation
growing clockwise around them) are −½ singularities in the anticlockwise convention, its "negative" ones +½.

TDANN first averages unit preferences in boxcar windows 1/24.5 of the sheet's edge wide; on a sheet under 25 units a
side that window holds at most one unit, so the map here is the units' own preferences on every sheet (no smoothing,
and TDANN's variance gate, circular sd over the window's units ÷ their count, passes every pixel).

Density: TDANN divides the count by (sheet edge / Λ)² with a column spacing Λ it fixes by hand (3.5 mm on a 36.75 mm
sheet). A unit sheet has no millimetres, so Λ is estimated from the map as the pinwheel literature does (Kaschube et
al. 2010): 1 / the power-weighted mean spatial frequency of z = e^{2iθ} (DC excluded, frequencies up to ½ cycle per
unit); the density is pinwheels per Λ² (≈ π in cat, tree shrew and macaque V1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from toponets_exp.brain.stats import ArrayLike, as_float64

PINWHEEL_THRESHOLD = 0.3   # TDANN's count_pinwheels(thresh=0.3)
PINWHEEL_MIN_PIXELS = 2    # TDANN's count_pinwheels(min_px_count=2)
# The ring around a pixel, as (row, col) offsets in TDANN's order: NW, N, NE, E, SE, S, SW, W.
RING = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


@dataclass(frozen=True)
class Pinwheels:
    """TDANN's counts (positive: winding number > threshold), their centres (row, col), the column spacing Λ (units)
    and the density per Λ²."""

    positive: int
    negative: int
    centres: list[tuple[float, float]]
    column_spacing: float
    density: float

    @property
    def count(self) -> int:
        """Pinwheels of both signs."""
        return self.positive + self.negative


def orientation_step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The step from b to a in degrees of orientation (period 180), wrapped to [−90, 90)."""
    return np.mod(a - b + 90.0, 180.0) - 90.0


def winding_numbers(theta_deg: ArrayLike, closed: bool = False) -> np.ndarray:
    """(H, W) winding number in turns around every interior pixel (TDANN's open ring unless `closed`); 0 on the border,
    NaN where the ring holds a NaN."""
    theta = as_float64(theta_deg)
    if theta.ndim != 2:
        raise ValueError(f"an orientation map is a 2-D image, got shape {theta.shape}")
    h, w = theta.shape
    out = np.zeros((h, w))
    if h < 3 or w < 3:
        return out
    ring = [theta[1 + dr:h - 1 + dr, 1 + dc:w - 1 + dc] for dr, dc in RING]
    steps = [orientation_step(ring[k + 1], ring[k]) for k in range(len(ring) - 1)]
    if closed:
        steps.append(orientation_step(ring[0], ring[-1]))
    out[1:-1, 1:-1] = np.sum(steps, axis=0) / 360.0
    return out


def column_spacing(theta_deg: ArrayLike) -> float:
    """Λ in units: 1 / the power-weighted mean spatial frequency (cycles per unit, 0 < k ≤ ½) of e^{2iθ}; NaN when
    the map holds a NaN or has no power off DC."""
    theta = as_float64(theta_deg)
    if not np.all(np.isfinite(theta)):
        return float("nan")
    power = np.abs(np.fft.fft2(np.exp(2j * np.deg2rad(theta)))) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(theta.shape[0]), np.fft.fftfreq(theta.shape[1]), indexing="ij"))
    keep = (k > 0) & (k <= 0.5)
    total = power[keep].sum()
    if total <= 0:
        return float("nan")
    return float(total / np.sum(k[keep] * power[keep]))


def count_pinwheels(theta_deg: ArrayLike, threshold: float = PINWHEEL_THRESHOLD,
                    min_pixels: int = PINWHEEL_MIN_PIXELS, closed: bool = False) -> Pinwheels:
    """TDANN's pinwheel count of an orientation map (degrees, row 0 at the top), centres, Λ and density per Λ²."""
    theta = as_float64(theta_deg)
    wn = winding_numbers(theta, closed=closed)
    counts, centres = [], []
    for mask in (wn > threshold, wn < -threshold):
        labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        kept = [i for i in range(1, n + 1) if sizes[i] >= min_pixels]
        counts.append(len(kept))
        centres += [tuple(float(v) for v in np.argwhere(labels == i).mean(axis=0)) for i in kept]
    spacing = column_spacing(theta)
    density = sum(counts) * spacing**2 / theta.size if np.isfinite(spacing) else float("nan")
    return Pinwheels(positive=counts[0], negative=counts[1], centres=centres, column_spacing=spacing,
                     density=float(density))
