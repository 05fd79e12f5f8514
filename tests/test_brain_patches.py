"""TDANN's category patches against a re-derivation of neuroailab/TDANN's maps/it_map.py::find_patches, maps/patch.py
and utils/spatial_utils.py::concave_hull (commit 80c585d): anchor by anchor, skimage's labelling, shapely's
polygonize as TDANN's alpha shape; maps with known patches and random maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import Delaunay
from scipy.spatial.distance import cdist
from shapely import geometry
from shapely.ops import polygonize, unary_union
from skimage.measure import label

from toponets_exp.brain.patches import alpha_shape_area, find_patches, unit_positions


def reference_concave_hull_area(points: np.ndarray, alpha: float) -> float:
    """concave_hull: triangles of circumradius < 1/alpha (Heron), their ordered edges, polygonize, union."""
    if len(points) < 4:
        return geometry.MultiPoint(list(map(tuple, points))).convex_hull.area
    edges, coords = set(), []
    for ia, ib, ic in Delaunay(points).simplices:
        pa, pb, pc = points[ia], points[ib], points[ic]
        a, b, c = np.hypot(*(pa - pb)), np.hypot(*(pb - pc)), np.hypot(*(pc - pa))
        s = (a + b + c) / 2.0
        area = np.sqrt(max(s * (s - a) * (s - b) * (s - c), 0.0))
        if area > 0 and a * b * c / (4.0 * area) < 1.0 / alpha:
            for i, j in ((ia, ib), (ib, ic), (ic, ia)):
                if (i, j) not in edges:
                    edges.add((i, j))
                    coords.append((tuple(points[i]), tuple(points[j])))
    return unary_union(list(polygonize(geometry.MultiLineString(coords)))).area


def reference_patches(t: np.ndarray, threshold: float = 2.0) -> list[tuple[list[int], float]]:
    """find_patches on positions scaled so the sheet's extent is TDANN's 70 mm: the returned areas in units²."""
    h, w = t.shape
    rows, cols = np.divmod(np.arange(h * w), w)
    extent = max(h, w) - 1
    scale = 70.0 / extent
    pos = np.stack([cols, h - 1 - rows], axis=1) * scale
    sel = t.ravel()
    grid = np.linspace(pos.min(), pos.max(), 100)
    cx, cy = np.meshgrid(grid, grid)
    image = np.zeros((100, 100))
    for r in range(100):
        for c in range(100):
            g = np.exp(-((pos[:, 0] - cx[r, c]) ** 2 + (pos[:, 1] - cy[r, c]) ** 2) / (2 * 2.4**2))
            image[-r, c] = np.sum(g * sel) / np.sum(g)
    image[image < threshold] = 0
    labels = np.flipud(label(image > 0))
    span = np.ptp(pos, axis=0)
    out = []
    for k in range(1, labels.max() + 1):
        r, c = np.nonzero(labels == k)
        points = np.stack([c / 100 * span[1], r / 100 * span[0]], axis=1)
        members = np.flatnonzero(cdist(pos, points).min(axis=1) < 1.0)
        if len(members) < 3:
            continue
        area = reference_concave_hull_area(pos[members], alpha=0.1)
        if 100 <= area <= 4500 and len(members) >= 10:
            out.append((members.tolist(), area / scale**2))
    return out


def blobs(shape: tuple[int, int], centres: list[tuple[float, float]], radius: float, value: float = 10.0) -> np.ndarray:
    """A t map of `value` inside disks of `radius` (units) around (row, col) centres, 0 elsewhere."""
    r, c = np.mgrid[:shape[0], :shape[1]].astype(float)
    out = np.zeros(shape)
    for cr, cc in centres:
        out[np.hypot(r - cr, c - cc) <= radius] = value
    return out


@pytest.mark.parametrize("shape, seed", [((32, 32), 0), ((24, 40), 1), ((16, 16), 2)])
def test_patches_equal_the_reference(shape: tuple[int, int], seed: int) -> None:
    """Smooth random t maps (several patches each) and two known blobs."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    maps = [4.0 * smooth / smooth.std(), blobs(shape, [(shape[0] * 0.3, shape[1] * 0.3),
                                                       (shape[0] * 0.7, shape[1] * 0.75)], shape[1] * 0.12)]
    for t in maps:
        ours = find_patches(t)
        reference = reference_patches(t)
        assert len(ours) == len(reference) >= 1
        for patch, (members, area) in zip(sorted(ours, key=lambda p: p.units[0]), sorted(reference)):
            assert patch.units.tolist() == members
            assert patch.area == pytest.approx(area, rel=1e-9)
    assert len(find_patches(maps[1])) == 2


def test_alpha_shape_equals_shapely_and_fills_enclosed_holes() -> None:
    rng = np.random.default_rng(3)
    ring = rng.uniform(-1, 1, (600, 2)) * 20
    ring = ring[(np.hypot(*ring.T) > 15) & (np.hypot(*ring.T) < 20)]
    cloud = rng.uniform(0, 30, (80, 2))
    for points in (ring, cloud, unit_positions((6, 9)), rng.uniform(0, 1, (3, 2))):
        assert alpha_shape_area(points, 10.0) == pytest.approx(reference_concave_hull_area(points, 0.1), rel=1e-9)
    assert alpha_shape_area(ring, 10.0) > 0.9 * np.pi * 20**2  # the hole of the annulus is filled
    assert alpha_shape_area(np.stack([np.arange(6.0), np.arange(6.0)], axis=1), 10.0) == 0.0  # collinear


def test_known_answers() -> None:
    """A uniform map is one component larger than TDANN's largest patch, a small blob is under the smallest, negative
    selectivity makes none, the map need not be at TDANN's offsets to keep its patches, and an infinite t has none."""
    assert find_patches(np.full((32, 32), 10.0)) == []
    assert find_patches(np.zeros((32, 32))) == []
    assert find_patches(blobs((32, 32), [(10, 10)], 1.0)) == []
    assert find_patches(-blobs((32, 32), [(10, 10)], 5.0)) == []
    for offsets in (True, False):
        (patch,) = find_patches(blobs((32, 32), [(10, 20)], 5.0), tdann_offsets=offsets)
        assert patch.centre == pytest.approx((10.0, 20.0), abs=1.0)
    assert find_patches(np.where(blobs((32, 32), [(10, 20)], 5.0) > 0, np.inf, 0.0)) is None
