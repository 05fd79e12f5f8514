"""TDANN's pinwheel detector against a loop-by-loop re-derivation of neuroailab/TDANN's maps/pinwheel_detector.py
(commit 80c585d), on maps with known singularities and random maps; the column spacing on plane waves."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label

from toponets_exp.brain.pinwheels import column_spacing, count_pinwheels, winding_numbers


def reference_counts(theta: np.ndarray, thresh: float = 0.3, min_px: int = 2) -> tuple[list[int], np.ndarray]:
    """TDANN's detector on an unsmoothed map: per interior pixel, the 8 neighbours from the upper left going
    clockwise, the 7 circular differences summed (no closing step), in turns; skimage's default labelling."""
    rows, cols = theta.shape
    wn = np.zeros_like(theta)
    for r in range(1, rows - 1):
        for c in range(1, cols - 1):
            ring = [theta[r - 1, c - 1], theta[r - 1, c], theta[r - 1, c + 1], theta[r, c + 1],
                    theta[r + 1, c + 1], theta[r + 1, c], theta[r + 1, c - 1], theta[r, c - 1]]
            total = 0.0
            for a, b in zip(ring[1:], ring[:-1]):
                total += np.deg2rad(((a - b + 90) % 180) - 90)
            wn[r, c] = total / (2 * np.pi)
    counts = []
    for mask in (wn > thresh, wn < -thresh):
        labels = label(mask)
        counts.append(sum(1 for i in range(1, labels.max() + 1) if np.sum(labels == i) >= min_px))
    return counts, wn


def singularity(shape: tuple[int, int], row: float, col: float, sign: float = 1.0) -> np.ndarray:
    """Orientation map (degrees) of a ±½ pinwheel at (row, col): θ = ±½·atan2(up, right), row 0 at the top."""
    r, c = np.mgrid[:shape[0], :shape[1]].astype(float)
    return np.mod(sign * 0.5 * np.degrees(np.arctan2(-(r - row), c - col)), 180.0)


def test_a_half_turn_at_a_pixel_is_one_negative_pinwheel_of_winding_minus_0_4375() -> None:
    theta = singularity((21, 21), 10, 10)
    wn = winding_numbers(theta)
    assert wn[10, 10] == pytest.approx(-0.4375, abs=1e-12)
    result = count_pinwheels(theta)
    assert (result.positive, result.negative) == (0, 1)
    assert result.centres[0] == pytest.approx((10.0, 9.5), abs=0.6)
    mirrored = count_pinwheels(np.mod(-theta, 180.0))
    assert (mirrored.positive, mirrored.negative) == (1, 0)


def test_the_closed_ring_gives_half_turns() -> None:
    """Closed, a ring's winding is a whole number of half turns: −½ on the four pixels whose rings enclose a
    singularity at a pixel corner, 0 elsewhere."""
    theta = singularity((21, 21), 10.5, 10.5)
    wn = winding_numbers(theta, closed=True)
    assert np.allclose(wn * 2, np.round(wn * 2), atol=1e-12)
    assert np.array_equal(np.argwhere(np.abs(wn) > 0.3), [[10, 10], [10, 11], [11, 10], [11, 11]])
    assert wn[10, 10] == pytest.approx(-0.5, abs=1e-12)
    assert count_pinwheels(theta, closed=True).count == 1


def test_known_answers() -> None:
    """Two singularities of opposite sign, a uniform map, a linear field (winding b/360 for b degrees per row), a
    pinwheel past the border and a NaN."""
    pair = np.mod(singularity((24, 48), 11.5, 10.5) + singularity((24, 48), 12.3, 38.2, -1.0), 180.0)
    assert (count_pinwheels(pair).positive, count_pinwheels(pair).negative) == (1, 1)
    assert count_pinwheels(np.full((12, 12), 45.0)).count == 0
    r, c = np.mgrid[:12, :12].astype(float)
    wn = winding_numbers(np.mod(3.0 * c + 10.0 * r, 180.0))
    assert np.allclose(wn[1:-1, 1:-1], 10.0 / 360.0) and np.all(wn[[0, -1], :] == 0)
    assert count_pinwheels(singularity((16, 16), -1.5, 8)).count == 0  # outside every ring
    assert np.isnan(winding_numbers(np.where(r == 5, np.nan, 3.0 * c))[4, 4])


@pytest.mark.parametrize("shape, sigma", [((16, 16), 1.0), ((24, 32), 1.5), ((9, 30), 0.7), ((20, 20), 0.0)])
def test_counts_and_windings_equal_the_reference(shape: tuple[int, int], sigma: float) -> None:
    """Random orientation maps (smoothed as e^{2iθ}, so they hold many pinwheels) and an unsmoothed one."""
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    z = np.exp(2j * rng.uniform(0, np.pi, shape))
    if sigma:
        z = ndimage.gaussian_filter(z.real, sigma, mode="wrap") + 1j * ndimage.gaussian_filter(z.imag, sigma,
                                                                                                 mode="wrap")
    theta = np.mod(np.degrees(np.angle(z)) / 2.0, 180.0)
    counts, wn = reference_counts(theta)
    ours = count_pinwheels(theta)
    assert np.allclose(winding_numbers(theta), wn, rtol=0, atol=1e-12)
    assert [ours.positive, ours.negative] == counts
    assert ours.count > 0


def test_column_spacing_of_plane_waves_and_density() -> None:
    """A map whose orientation turns 180° every λ units along a direction has Λ = λ; the density is pinwheels per Λ²."""
    r, c = np.mgrid[:32, :32].astype(float)
    assert column_spacing(np.mod(180.0 * c / 8.0, 180.0)) == pytest.approx(8.0, rel=1e-9)
    assert column_spacing(np.mod(180.0 * r / 16.0, 180.0)) == pytest.approx(16.0, rel=1e-9)
    assert np.isnan(column_spacing(np.full((8, 8), 30.0)))
    theta = np.mod(singularity((32, 32), 10, 10) + singularity((32, 32), 20, 22, -1.0), 180.0)
    result = count_pinwheels(theta)
    assert result.density == pytest.approx(result.count * result.column_spacing**2 / 1024.0)


def test_bad_map_is_refused() -> None:
    with pytest.raises(ValueError, match="2-D image"):
        winding_numbers(np.zeros(16))
