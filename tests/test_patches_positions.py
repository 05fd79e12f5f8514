"""TDANN's category patches at explicit positions against a re-derivation of neuroailab/TDANN (commit 80c585d)
maps/it_map.py::ITMap.find_patches, maps/patch.py::labels_to_unit_indices and ::Patch (its area: the concave hull
of utils/spatial_utils.py, as shapely polygonizes it), on a conv layer laid out over a ~70 mm sheet as TDANN lays
out its VTC layers (channel × row × column, each unit within its receptive-field anchor's square)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from skimage.measure import label
from test_brain_patches import reference_concave_hull_area

from toponets_exp.brain import find_patches_at
from toponets_exp.brain.patches import find_patches, unit_positions

SHEET_MM = 70.0


def layer_positions(channels: int, side: int, seed: int) -> np.ndarray:
    """(C·side², 2) positions in [0, 70] mm: unit (c, h, w) at its anchor ((w, h) + ½)·pitch plus a uniform offset
    of ±pitch/2 (TDANN's place_conv with random offsets)."""
    pitch = SHEET_MM / side
    _, h, w = np.meshgrid(np.arange(channels), np.arange(side), np.arange(side), indexing="ij")
    anchors = (np.stack([w.ravel(), h.ravel()], axis=1) + 0.5) * pitch
    return anchors + np.random.default_rng(seed).uniform(-pitch / 2, pitch / 2, anchors.shape)


def bumps(positions: np.ndarray, centres: list[tuple[float, float]], width: float, seed: int) -> np.ndarray:
    """A t per unit: 7 at each (x, y) centre falling off as a Gaussian of `width` mm, plus unit noise."""
    t = sum(7.0 * np.exp(-np.sum((positions - c) ** 2, axis=1) / (2 * width**2)) for c in centres)
    return t + np.random.default_rng(seed).normal(size=len(positions))


def reference_patches(sel: np.ndarray, positions: np.ndarray, threshold: float = 2.0) -> list[tuple[list[int], float]]:
    """ITMap.find_patches on positions in mm: (members, area) of every kept patch."""
    anchors = np.linspace(np.min(positions), np.max(positions), 100)
    cx, cy = np.meshgrid(anchors, anchors)
    smoothed = np.zeros((100, 100))
    sigma_sq = 2.4**2
    for row in range(100):  # one anchor row at a time: gaussian_2d weights of every unit for each of its columns
        gauss = 1.0 / (2.0 * np.pi * sigma_sq) * np.exp(-(
            (positions[None, :, 0] - cx[row, :, None]) ** 2.0 / (2.0 * sigma_sq)
            + (positions[None, :, 1] - cy[row, :, None]) ** 2.0 / (2.0 * sigma_sq)))
        for col in range(100):
            smoothed[-row, col] = np.average(sel, weights=gauss[col])
    smoothed[smoothed < threshold] = 0
    labels = label(smoothed > 0)
    extent = np.ptp(positions, axis=0)
    out = []
    for lab in np.unique(labels):
        if lab == 0:
            continue
        rows, cols = np.nonzero(lab == np.flipud(labels))
        matching = np.stack((cols / len(labels) * extent[1], rows / len(labels) * extent[0]), axis=1)
        units = np.nonzero(np.min(cdist(matching, positions), axis=0) < 1)[0]
        if len(units) < 3:
            continue
        area = reference_concave_hull_area(positions[units], alpha=0.1)
        if 100 <= area <= 4500 and len(units) >= 10:
            out.append((units.tolist(), area))
    return out


def assert_same(ours: list, reference: list[tuple[list[int], float]], scale: float = 1.0) -> None:
    assert len(ours) == len(reference)
    for patch, (members, area) in zip(sorted(ours, key=lambda p: p.units[0]), sorted(reference)):
        assert patch.units.tolist() == members
        assert patch.area == pytest.approx(area * scale**2, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_patches_equal_tdann_on_a_layer(seed: int) -> None:
    """Three bumps on an 8 × 24 × 24 layer: three patches, each TDANN's, areas in mm², centres in mm."""
    positions = layer_positions(8, 24, seed)
    centres = [(18.0, 20.0), (50.0, 25.0), (35.0, 55.0)]
    t = bumps(positions, centres, 5.0, seed)
    reference = reference_patches(t, positions)
    ours = find_patches_at(t, positions)
    assert len(ours) == 3
    assert_same(ours, reference)
    for patch in ours:
        assert np.allclose(patch.centre, positions[patch.units].mean(axis=0))
        assert min(np.hypot(patch.centre[0] - x, patch.centre[1] - y) for x, y in centres) < 3.0


def test_positions_that_do_not_start_at_zero_and_other_units() -> None:
    """TDANN maps anchors back from 0, not from the positions' minimum: a shifted sheet moves its patches' members
    (and loses patches shifted far), exactly as TDANN's code does; positions in other units scale by `mm`."""
    positions = layer_positions(8, 24, 2)
    t = bumps(positions, [(20.0, 25.0), (48.0, 45.0)], 5.0, 3)
    for shift in ((6.0, -4.0), (100.0, 100.0)):
        moved = positions + shift
        reference = reference_patches(t, moved)
        assert_same(find_patches_at(t, moved), reference)
    assert reference == [] and len(find_patches_at(t, positions + 6.0)) == 2
    assert_same(find_patches_at(t, positions * 3.0, mm=3.0), reference_patches(t, positions), scale=3.0)


def test_own_anchor_positions_follow_the_sheet() -> None:
    """tdann_offsets=False puts each anchor at its own position: a sheet shifted along the diagonal (the anchors span
    the same range on both axes) keeps its patches and members; anchors too far from every unit are background."""
    positions = layer_positions(8, 24, 4)
    t = bumps(positions, [(20.0, 25.0), (48.0, 45.0)], 5.0, 5)
    here = find_patches_at(t, positions, tdann_offsets=False)
    there = find_patches_at(t, positions + 130.0, tdann_offsets=False)
    assert len(here) == len(there) == 2
    for a, b in zip(here, there):
        assert a.units.tolist() == b.units.tolist() and a.area == pytest.approx(b.area, rel=1e-9)
        assert np.allclose(np.subtract(b.centre, a.centre), (130.0, 130.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anchors up to ~200 mm from every unit: no 0/0 warning, no error
        far = find_patches_at(t, positions + (0.0, 200.0), tdann_offsets=False)
    assert len(far) == 2 and all(b.units.size < a.units.size for a, b in zip(here, far))  # sparser anchors


def test_the_sheet_version_is_the_positions_version() -> None:
    rng = np.random.default_rng(6)
    r, c = np.mgrid[:30, :36]
    t = 8 * np.exp(-((r - 10) ** 2 + (c - 12) ** 2) / 30.0) + rng.normal(0, 0.5, r.shape)
    extent = 35.0
    sheet = find_patches(t)
    at = find_patches_at(t.ravel(), unit_positions(t.shape), mm=extent / SHEET_MM)
    assert len(sheet) == len(at) == 1
    assert sheet[0].units.tolist() == at[0].units.tolist() and sheet[0].area == at[0].area
    rows, cols = np.divmod(at[0].units, 36)
    assert sheet[0].centre == pytest.approx((rows.mean(), cols.mean()))
    assert at[0].centre == pytest.approx((cols.mean(), 29 - rows.mean()))


def test_bad_input() -> None:
    positions = layer_positions(2, 4, 7)
    t = np.zeros(len(positions))
    assert find_patches_at(np.where(np.arange(len(t)) == 3, np.inf, t), positions) is None
    assert find_patches_at(t, np.zeros_like(positions)) == []
    with pytest.raises(ValueError, match="1-D"):
        find_patches_at(t.reshape(4, -1), positions)
    with pytest.raises(ValueError, match="positions must be"):
        find_patches_at(t, positions.T)
    with pytest.raises(ValueError, match="positions contain"):
        find_patches_at(t, np.where(positions > 60, np.nan, positions))
    for mm in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="mm="):
            find_patches_at(t, positions, mm=mm)
