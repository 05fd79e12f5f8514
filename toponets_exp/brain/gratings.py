"""Sine gratings and orientation tuning, as TDANN measures V1 (Margalit et al., Neuron 2024; neuroailab/TDANN).

Stimuli: TDANN's V1 set made procedurally: 8 orientations (0, 22.5, …, 157.5°) × 8 spatial frequencies × 5 phases
(0, 2π/5, …) × 2 colours (black/white, red/cyan) = 640 full-field gratings. TDANN's frequencies are 5.5 … 96.94
cycles per 224-pixel image (`linspace(5.5, 110, 9)[:-1]`); here they keep the same cycles per pixel at the model's
input size S (c · S / 224 cycles per image, all below Nyquist). TDANN reads its gratings from image files whose
formula is not in its code; here pixel (row, col) has centred coordinates x = col − (S−1)/2, y = (S−1)/2 − row,
u = (x cos θ + y sin θ) / S and g = ½ + ½ sin(2π c u + φ) in [0, 1]: θ = 0 has vertical bars and θ grows
anticlockwise; black/white is (g, g, g), red/cyan (g, 1 − g, 1 − g).

Tuning (spacetorch's `SineResponses` and `V1Map`): responses are shifted by their global minimum when it is negative
and scaled so that the median unit's peak is Ringach et al.'s 33.39 spikes/s (this moves no preference and no
circular variance; it sets the scale of the "responsive" rule). A unit's orientation tuning curve r_k is its mean
response over the 80 gratings of orientation k; circular variance CV = 1 − |Σ r_k e^{2iθ_k}| / Σ r_k. Preferred
orientation: the curve closed at 180°, linearly interpolated at 50 angles in [0, 180], fitted with a von Mises
a·e^{κ cos(x − x0)} / (2π I0(κ)) over x in [−π, π] (scipy's curve_fit from a = x0 = κ = 1), and the angle where the
fit peaks (TDANN's default, `vonmises`); or the doubled-angle vector mean of r (`vector`, the angle of Σ r_k e^{2iθ_k}).
Preferred spatial frequency: the index of the frequency with the largest mean response. A unit is
orientation-selective when it responds (mean response > 1 after the scaling) and its CV < 0.6 (TDANN's rule).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import interpolate, optimize, special
from scipy.optimize import OptimizeWarning

from toponets_exp.brain.stats import ArrayLike, as_float64

ORIENTATIONS = tuple(float(a) for a in np.linspace(0.0, 180.0, 9)[:-1])     # degrees
TDANN_CYCLES = tuple(float(c) for c in np.linspace(5.5, 110.0, 9)[:-1])    # cycles per 224-pixel image
TDANN_IMAGE = 224
PHASES = tuple(float(p) for p in np.linspace(0.0, 2 * np.pi, 6)[:-1])      # radians
COLOURS = ("black/white", "red/cyan")
RINGACH_MEDIAN_PEAK = 33.3868065   # median peak rate of Ringach et al. 2002's V1 cells, TDANN's target scale
DENSE_ANGLES = 50                  # points of the interpolated tuning curve TDANN fits
SELECTIVE_CV = 0.6                 # TDANN: orientation-selective when CV < 0.6 ...
RESPONSIVE_MEAN = 1.0              # ... among units whose mean response exceeds 1
PREFERENCES = ("vonmises", "vector")


@dataclass(frozen=True)
class Gratings:
    """The grating images (N, 3, S, S) in [0, 1] and each image's orientation (deg), frequency index, phase, colour."""

    images: torch.Tensor
    orientation: np.ndarray
    frequency: np.ndarray
    phase: np.ndarray
    colour: np.ndarray
    cycles_per_image: tuple[float, ...]


def make_gratings(size: int) -> Gratings:
    """TDANN's 640 gratings (8 orientations × 8 frequencies × 5 phases × 2 colours) at `size` × `size` pixels."""
    if isinstance(size, bool) or int(size) != size or size < 8:
        raise ValueError(f"size={size!r} must be an integer >= 8 (pixels)")
    centre = (size - 1) / 2
    x = np.arange(size) - centre
    y = centre - np.arange(size)
    cycles = tuple(c * size / TDANN_IMAGE for c in TDANN_CYCLES)
    images, labels = [], []
    for o, theta in enumerate(np.deg2rad(ORIENTATIONS)):
        u = (x[None, :] * np.cos(theta) + y[:, None] * np.sin(theta)) / size
        for f, c in enumerate(cycles):
            for phase in PHASES:
                g = 0.5 + 0.5 * np.sin(2 * np.pi * c * u + phase)
                for colour in range(len(COLOURS)):
                    images.append(np.stack([g, g, g]) if colour == 0 else np.stack([g, 1 - g, 1 - g]))
                    labels.append((ORIENTATIONS[o], f, phase, colour))
    orientation, frequency, phase, colour = (np.asarray(v) for v in zip(*labels))
    return Gratings(torch.tensor(np.stack(images), dtype=torch.float32), orientation, frequency.astype(int), phase,
                    colour.astype(int), cycles)


@dataclass(frozen=True)
class Tuning:
    """Per unit: circular variance, preferred orientation (deg), preferred frequency index, whether its orientation
    tuning is flat (All-TNN leaves such units out of the spatial entropy), responsive and selective."""

    circular_variance: np.ndarray
    preferred_orientation: np.ndarray
    preferred_frequency: np.ndarray
    flat: np.ndarray
    responsive: np.ndarray
    selective: np.ndarray


def tdann_scale(responses: ArrayLike) -> np.ndarray:
    """(images, units) responses shifted to be non-negative (global minimum) and scaled to Ringach's median peak."""
    r = as_float64(responses).copy()
    if r.min() < 0:
        r -= r.min()
    peak = np.median(r.max(axis=0))
    return r * (RINGACH_MEDIAN_PEAK / peak) if peak > 0 else r


def orientation_curves(responses: np.ndarray, gratings: Gratings) -> np.ndarray:
    """(units, 8) mean response per orientation, orientations ascending."""
    return np.stack([responses[gratings.orientation == a].mean(axis=0) for a in ORIENTATIONS], axis=1)


def circular_variance(curves: np.ndarray) -> np.ndarray:
    """1 − |Σ r_k e^{2iθ_k}| / Σ r_k per unit (NaN for a unit whose responses sum to 0)."""
    theta = np.linspace(0.0, np.pi, len(ORIENTATIONS) + 1)[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - np.abs(curves @ np.exp(2j * theta)) / curves.sum(axis=1)


def _von_mises(x: np.ndarray, a: float, x0: float, kappa: float) -> np.ndarray:
    return a * np.exp(kappa * np.cos(x - x0)) / (2 * np.pi * special.i0(kappa))


def vonmises_preference(curve: np.ndarray) -> float:
    """TDANN's preferred orientation of one 8-point tuning curve: the argmax of a von Mises fitted to its 50-point
    interpolation (NaN when the fit does not converge)."""
    closed = np.append(curve, curve[0])
    dense = np.linspace(0.0, 180.0, DENSE_ANGLES)
    values = interpolate.interp1d(np.append(ORIENTATIONS, 180.0), closed, kind="linear")(dense)
    x = np.linspace(-np.pi, np.pi, DENSE_ANGLES)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            params, _ = optimize.curve_fit(_von_mises, x, values, maxfev=100000)
        except RuntimeError:
            return float("nan")
        fit = _von_mises(x, *params)
    return float(dense[np.argmax(fit)]) if np.all(np.isfinite(fit)) else float("nan")


def vector_preference(curves: np.ndarray) -> np.ndarray:
    """The doubled-angle vector mean of each tuning curve, in degrees [0, 180)."""
    theta = np.linspace(0.0, np.pi, len(ORIENTATIONS) + 1)[:-1]
    angle = np.angle(curves @ np.exp(2j * theta))
    return np.rad2deg(np.mod(angle, 2 * np.pi) / 2)


def grating_tuning(responses: ArrayLike, gratings: Gratings, preference: str = "vonmises") -> Tuning:
    """Orientation and frequency tuning of every unit from its (640, units) grating responses (see the module)."""
    if preference not in PREFERENCES:
        raise ValueError(f"preference={preference!r} must be one of {list(PREFERENCES)}")
    r = tdann_scale(responses)
    if r.shape[0] != len(gratings.orientation):
        raise ValueError(f"responses must have one row per grating ({len(gratings.orientation)}), got {r.shape[0]}")
    curves = orientation_curves(r, gratings)
    cv = circular_variance(curves)
    prefs = (np.array([vonmises_preference(c) for c in curves]) if preference == "vonmises"
             else vector_preference(curves))
    frequency_curves = np.stack([r[gratings.frequency == f].mean(axis=0) for f in range(len(TDANN_CYCLES))], axis=1)
    responsive = r.mean(axis=0) > RESPONSIVE_MEAN
    return Tuning(circular_variance=cv, preferred_orientation=prefs,
                  preferred_frequency=frequency_curves.argmax(axis=1), flat=np.ptp(curves, axis=1) == 0,
                  responsive=responsive,
                  selective=responsive & np.isfinite(cv) & (cv < SELECTIVE_CV))
