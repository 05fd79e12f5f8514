"""Gratings, orientation tuning (TDANN) and All-TNN's orientation-map statistics against re-derivations written from
the authors' code (spacetorch's V1Map / SineResponses; All-TNN's compute_spatial_entropies and get_cluster_radii)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import interpolate, optimize, special, stats

from toponets_exp.brain.gratings import (ORIENTATIONS, RINGACH_MEDIAN_PEAK, grating_tuning, make_gratings,
                                         tdann_scale)
from toponets_exp.brain.orientation_maps import (cluster_radii, orientation_bins, radial_power_profile,
                                                 spatial_entropy_map, spectrum_slope)
from toponets_exp.brain.tdann import tdann_smoothness


def alltnn_entropy(o_bins: np.ndarray, n_bins: int = 8, window_size: int = 8) -> np.ndarray:
    """compute_spatial_entropies on one sheet: np.take(mode='wrap') windows, scipy's entropy (nats) of bin counts."""
    h, w = o_bins.shape
    out = np.zeros((h, w))
    for x in range(h):
        for y in range(w):
            xi = np.take(np.arange(h), range(x - window_size // 2, x + 1 + window_size // 2), mode="wrap")
            yi = np.take(np.arange(w), range(y - window_size // 2, y + 1 + window_size // 2), mode="wrap")
            window = o_bins[xi][:, yi]
            with np.errstate(invalid="ignore"):
                out[x, y] = stats.entropy([(window == b).sum() for b in range(n_bins)])
    return out


def alltnn_cluster_radii(sheet: np.ndarray, bin_size: int = 8) -> np.ndarray:
    """get_cluster_radii: roll the unit to (0, 0), grow a window centred at (N//2, N//2) until it holds every bin."""
    result = np.zeros(sheet.shape)
    for x, y in np.argwhere(sheet >= 0):
        r = 1
        while True:
            shifted = np.roll(sheet, shift=(-x, -y), axis=(0, 1))
            cx, cy = sheet.shape[0] // 2, sheet.shape[1] // 2
            if len(set(shifted[cx - r:cx + r + 1, cy - r:cy + r + 1].ravel().tolist())) == bin_size:
                result[x, y] = r
                break
            r += 1
            if r >= min(sheet.shape) / 2:
                result[x, y] = np.nan
                break
    return result


def smooth_orientations(side: int, seed: int, sigma: float = 2.0) -> np.ndarray:
    """A smooth orientation map in degrees: the half-angle of a blurred random complex field (pinwheels included)."""
    from scipy import ndimage

    z = np.random.default_rng(seed).normal(size=(2, side, side))
    z = ndimage.gaussian_filter(z, (0, sigma, sigma), mode="wrap")
    return np.rad2deg(np.mod(np.arctan2(z[1], z[0]), 2 * np.pi) / 2)


@pytest.mark.parametrize("side", [12, 17, 24])
def test_spatial_entropy_equals_alltnn(side: int) -> None:
    for theta in (smooth_orientations(side, side), np.random.default_rng(side).uniform(0, 180, (side, side))):
        bins = orientation_bins(theta, (side, side))
        bins[0, :3] = -1  # flat-tuned units: in no bin
        assert np.allclose(spatial_entropy_map(bins), alltnn_entropy(bins), rtol=1e-12, atol=1e-14)
    assert np.allclose(spatial_entropy_map(bins, window=30), alltnn_entropy(bins, window_size=30), rtol=1e-12)


@pytest.mark.parametrize("side", [9, 10, 16, 21])
def test_cluster_radii_equal_alltnn(side: int) -> None:
    """The same radii, each at its own unit (All-TNN stores them half a sheet away), and the same mean."""
    rough = np.random.default_rng(side).uniform(0, 180, (side, side))
    for theta in (smooth_orientations(side, side, sigma=1.0), rough):
        ours = cluster_radii(orientation_bins(theta, (side, side)))
        theirs = alltnn_cluster_radii(orientation_bins(theta, (side, side)))
        assert np.array_equal(np.roll(ours, (-(side // 2), -(side // 2)), axis=(0, 1)), theirs, equal_nan=True)
        assert np.isnan(np.mean(ours)) == np.isnan(np.mean(theirs))
        if not np.isnan(np.mean(ours)):
            assert np.mean(ours) == pytest.approx(np.mean(theirs), abs=1e-12)


def test_orientation_map_statistics_known_answers() -> None:
    """One orientation everywhere: entropy 0, no cluster ever complete; bins start at the test orientations; a
    ramp over 180° across 16 columns (two columns a bin) holds every bin once the window spans 15 columns (r = 7);
    TDANN smoothness with period 180 does not change when every orientation turns by the same angle."""
    flat = orientation_bins(np.full(64, 30.0), (8, 8))
    assert np.all(spatial_entropy_map(flat) == 0) and np.all(np.isnan(cluster_radii(flat)))
    assert orientation_bins(np.array([0.0, 22.4, 22.5, 180.0, np.nan, 157.6]), (1, 6)).tolist() == [[0, 0, 1, 0, -1, 7]]
    ramp = np.tile(np.arange(16) * 180 / 16, (16, 1))
    radii = cluster_radii(orientation_bins(ramp, (16, 16)))
    assert np.all(radii == 7)
    theta = smooth_orientations(20, 3).ravel()
    cyclic = tdann_smoothness(theta, (20, 20), period=180.0)
    assert tdann_smoothness(np.mod(theta + 77.0, 180.0), (20, 20), period=180.0) == pytest.approx(cyclic, abs=1e-12)
    assert tdann_smoothness(np.mod(theta + 77.0, 180.0), (20, 20)) != pytest.approx(cyclic, abs=1e-3)
    narrow = 60.0 + theta / 3.0  # within [60, 120): no difference reaches 90°, nothing to wrap
    assert tdann_smoothness(narrow, (20, 20), period=180.0) == pytest.approx(tdann_smoothness(narrow, (20, 20)))


def tdann_preference(curve: np.ndarray) -> float:
    """V1Map._smooth_orientation_tuning_curves + fit_vonmises for one unit."""
    tc = np.append(curve, curve[0])
    dense_x = np.linspace(0, 180, 50)
    dense = interpolate.interp1d(np.linspace(0, 180, 9), tc)(dense_x)
    x = np.linspace(-np.pi, np.pi, 50)

    def vm(x, a, x0, kappa):
        return a * np.exp(kappa * np.cos(x - x0)) / (2 * np.pi * special.i0(kappa))

    params, _ = optimize.curve_fit(vm, x, dense, p0=None, maxfev=100000)
    return float(dense_x[np.argmax(vm(x, *params))])


def test_grating_tuning_equals_tdann_on_simulated_units() -> None:
    """Units with von Mises orientation tuning (known preferences) plus noise: TDANN's scaling, tuning curves, circular
    variance and fitted preferences, derived as spacetorch does; a flat unit is not selective."""
    gratings = make_gratings(16)
    rng = np.random.default_rng(0)
    prefs = np.array([0.0, 30.0, 67.5, 100.0, 150.0, 90.0])
    theta = np.deg2rad(gratings.orientation)[:, None]
    responses = np.exp(3 * np.cos(2 * (theta - np.deg2rad(prefs)[None, :]))) + 0.2 * rng.normal(size=(640, 6))
    responses[:, -1] = 5.0 + 0.01 * rng.normal(size=640)
    responses -= 3.0  # negative responses: TDANN shifts by the global minimum
    tuning = grating_tuning(responses, gratings)
    scaled = responses - responses.min()
    scaled = scaled * RINGACH_MEDIAN_PEAK / np.median(scaled.max(axis=0))
    assert np.allclose(tdann_scale(responses), scaled, rtol=1e-14)
    curves = np.stack([scaled[gratings.orientation == a].mean(axis=0) for a in ORIENTATIONS], axis=1)
    angles = np.linspace(0, np.pi, 9)[:-1]
    cv = 1 - np.abs(np.sum(curves * np.exp(2j * angles), axis=1)) / curves.sum(axis=1)
    assert np.allclose(tuning.circular_variance, cv, rtol=1e-12)
    assert tuning.preferred_orientation.tolist() == [tdann_preference(c) for c in curves]
    step = 180 / 49
    wrapped = np.abs((tuning.preferred_orientation[:5] - prefs[:5] + 90) % 180 - 90)
    assert np.all(wrapped <= step)  # the fit recovers each unit's preference to the dense grid's step
    assert tuning.selective.tolist() == [True] * 5 + [False]
    vector = grating_tuning(responses, gratings, preference="vector").preferred_orientation
    assert np.all(np.abs((vector[:5] - prefs[:5] + 90) % 180 - 90) < 2.0)


def test_gratings_are_tdanns_set() -> None:
    g = make_gratings(32)
    assert g.images.shape == (640, 3, 32, 32) and g.images.dtype == torch.float32
    assert 0.0 <= float(g.images.min()) and float(g.images.max()) <= 1.0
    assert sorted(set(g.orientation.tolist())) == list(ORIENTATIONS) and len(set(g.phase.tolist())) == 5
    assert g.cycles_per_image[0] == pytest.approx(5.5 * 32 / 224) and max(g.cycles_per_image) < 16  # < Nyquist
    bw, colour = g.images[(g.colour == 0)], g.images[(g.colour == 1)]
    assert torch.equal(bw[:, 0], bw[:, 1]) and torch.allclose(colour[:, 1], 1 - colour[:, 0], atol=1e-6)
    vertical = g.images[(g.orientation == 0) & (g.colour == 0)][:, 0]
    assert torch.allclose(vertical, vertical[:, :1].expand_as(vertical))  # θ = 0: every row the same, vertical bars
    with pytest.raises(ValueError, match="size=4"):
        make_gratings(4)


def alltnn_radial_profile(data: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The plotted get_radial_profile: integer radius from `center` (x paired with center[0]), rings r <= center[0]."""
    y, x = np.indices(data.shape)
    r = np.sqrt((x - center[0]) ** 2 + (y - center[1]) ** 2).astype(np.int32)
    mask = r <= center[0]
    return np.bincount(r[mask].ravel(), data[mask].ravel()) / np.bincount(r[mask].ravel())


@pytest.mark.parametrize("side", [12, 17, 32])
def test_radial_spectrum_equals_alltnn(side: int) -> None:
    """fft_smoothness → |F|² → get_radial_profile → plot_fft's log-log slope, on the peak map θ / 180."""
    for theta in (smooth_orientations(side, side), np.random.default_rng(side).uniform(0, 180, (side, side))):
        peak = np.mod(theta, 180) / 180
        power = np.abs(np.fft.fftshift(np.fft.fft2(peak))) ** 2
        reference = alltnn_radial_profile(power, np.array(power.shape) // 2)
        ours = radial_power_profile(peak)
        assert np.allclose(ours, reference, rtol=1e-12)
        slope, _ = np.polyfit(np.log(range(1, len(reference) + 1)), np.log(reference), 1)
        assert spectrum_slope(ours) == pytest.approx(slope, rel=1e-12)
    smooth = spectrum_slope(radial_power_profile(np.mod(smooth_orientations(32, 0, sigma=3.0), 180) / 180))
    noise = spectrum_slope(radial_power_profile(np.random.default_rng(0).uniform(0, 1, (32, 32))))
    assert smooth < noise  # a smooth map's power falls faster with frequency
