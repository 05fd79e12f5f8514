"""Category patches of a selectivity map, as TDANN finds them (neuroailab/TDANN, maps/it_map.py::find_patches and
maps/patch.py; Margalit et al., Neuron 2024).

TDANN's IT sheet is 70 mm wide; here a unit at (row, col) of an H×W sheet sits at x = col, y = H − 1 − row (y up, as
TDANN's positions) and every length in mm is scaled by E / 70, E = max(H, W) − 1 the sheet's extent in units:
- smoothing: the t value at each of 100 × 100 anchors spread evenly over [0, E]² (both axes) is the Gaussian-weighted
  mean of every unit's t, σ = 2.4 mm (0.034 E), the kernel not truncated;
- patches: anchors with smoothed t ≥ `threshold` (2) and > 0, 8-connected; the units closer than 1 mm (0.014 E) to one
  of a component's anchors are its members; a component of fewer than 3 units is dropped;
- a patch is kept when its area lies in [100, 4500] mm² ([0.0204, 0.918] E²) and it has at least 10 units. Its area
  is the alpha shape of its units (TDANN's `concave_hull`, α = 0.1 / mm): the Delaunay triangles whose circumradius is
  under 10 mm (0.143 E), with every region those triangles enclose filled in.
TDANN writes the anchors into an image whose rows are flipped and rolled by one and maps the image back to mm by
dividing pixel indices by 100 (not 99) with the axes' extents swapped, which moves each component about one anchor
pitch towards smaller y; `tdann_offsets=True` (the default) keeps that, False maps every anchor to its own position.
A map holding a non-finite t has no patches (TDANN's t is 0 where a unit's variance is 0; ours is ±∞ there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, Delaunay, QhullError, cKDTree

from toponets_exp.brain.stats import ArrayLike, as_float64

TDANN_SHEET_MM = 70.0        # TDANN's VTC sheet (constants.VTC_SIZE)
TDANN_SIGMA_MM = 2.4         # find_patches' smoothing width
TDANN_ANCHORS = 100          # anchors per axis
TDANN_MEMBER_MM = 1.0        # a unit belongs to a component closer than this to one of its anchors
TDANN_AREA_MM2 = (100.0, 4500.0)
TDANN_MIN_UNITS = 10
TDANN_ALPHA = 0.1            # concave_hull's alpha: triangles of circumradius < 1/alpha mm are kept


@dataclass(frozen=True)
class Patch:
    """One patch: its member units (flat indices on the sheet), area in units² and centre (row, col) of its units."""

    units: np.ndarray
    area: float
    centre: tuple[float, float]


def unit_positions(sheet: tuple[int, int]) -> np.ndarray:
    """(H·W, 2) positions (x = col, y = H − 1 − row) of a sheet's units in row-major order, in units."""
    h, w = (int(v) for v in sheet)
    rows, cols = np.divmod(np.arange(h * w), w)
    return np.stack([cols, h - 1 - rows], axis=1).astype(float)


def smoothed_anchors(values: np.ndarray, positions: np.ndarray, sigma: float, n: int = TDANN_ANCHORS) -> tuple[
        np.ndarray, np.ndarray]:
    """Anchor coordinates (n,) on both axes and the (n, n) Gaussian-weighted means [y anchor, x anchor]."""
    anchors = np.linspace(positions.min(), positions.max(), n)
    gx = np.exp(-(anchors[:, None] - positions[None, :, 0]) ** 2 / (2 * sigma**2))
    gy = np.exp(-(anchors[:, None] - positions[None, :, 1]) ** 2 / (2 * sigma**2))
    return anchors, (gy * values) @ gx.T / (gy @ gx.T)


def alpha_shape_area(points: np.ndarray, max_radius: float) -> float:
    """Area of TDANN's concave hull of 2-D points: Delaunay triangles with circumradius < max_radius, plus every
    region of other triangles they enclose; the convex hull under 4 points; 0 when the points are collinear."""
    if len(points) < 4:
        try:
            return float(ConvexHull(points).volume) if len(points) == 3 else 0.0
        except QhullError:
            return 0.0
    try:
        tri = Delaunay(points)
    except QhullError:
        return 0.0
    a, b, c = (points[tri.simplices[:, k]] for k in range(3))
    sides = [np.linalg.norm(b - c, axis=1), np.linalg.norm(a - c, axis=1), np.linalg.norm(a - b, axis=1)]
    area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = (area > 0) & (sides[0] * sides[1] * sides[2] / (4 * area) < max_radius)
    if not kept.any():
        return 0.0
    # a group of dropped triangles is enclosed by kept edges unless it reaches the hull (a side without neighbour)
    dropped = np.flatnonzero(~kept)
    index = {t: i for i, t in enumerate(dropped)}
    parent = list(range(len(dropped)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for t in dropped:
        for other in tri.neighbors[t]:
            if other >= 0 and not kept[other]:
                parent[root(index[t])] = root(index[other])
    outside = {root(index[t]) for t in dropped if np.any(tri.neighbors[t] < 0)}
    enclosed = [t for t in dropped if root(index[t]) not in outside]
    return float(area[kept].sum() + area[enclosed].sum())


def find_patches(t_map: ArrayLike, threshold: float = 2.0, tdann_offsets: bool = True) -> list[Patch] | None:
    """TDANN's category patches of an (H, W) t map (sizes scaled from its 70 mm sheet); None when a t is not finite."""
    t = as_float64(t_map)
    if t.ndim != 2:
        raise ValueError(f"a selectivity map is a 2-D image, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        return None
    positions = unit_positions(t.shape)
    extent = float(np.ptp(positions))
    if extent == 0:
        return []
    mm = extent / TDANN_SHEET_MM  # units per TDANN millimetre
    anchors, smooth = smoothed_anchors(t.ravel(), positions, TDANN_SIGMA_MM * mm)
    n = len(anchors)
    if tdann_offsets:  # anchor row r is written to image row −r mod n, read back from the flipped image at row/n·extent
        image = smooth[(-np.arange(n)) % n]
    else:
        image = smooth
    foreground = (image >= threshold) & (image > 0)  # TDANN zeroes values under the threshold, keeps those > 0
    labels, count = ndimage.label(foreground, structure=np.ones((3, 3), dtype=int))
    tree = cKDTree(positions)
    span = np.ptp(positions, axis=0)
    lo_area, hi_area = (a * mm**2 for a in TDANN_AREA_MM2)
    patches = []
    for k in range(1, count + 1):
        rows, cols = np.nonzero(labels == k)
        if tdann_offsets:
            flipped = n - 1 - rows
            points = np.stack([cols / n * span[1], flipped / n * span[0]], axis=1)
        else:
            points = np.stack([anchors[cols], anchors[rows]], axis=1)
        near = tree.query_ball_point(points, r=np.nextafter(TDANN_MEMBER_MM * mm, 0))
        members = np.unique(np.concatenate([np.asarray(m, dtype=int) for m in near]))
        if len(members) < 3:
            continue
        area = alpha_shape_area(positions[members], 1.0 / (TDANN_ALPHA / mm))
        if lo_area <= area <= hi_area and len(members) >= TDANN_MIN_UNITS:
            r, c = np.divmod(members, t.shape[1])
            patches.append(Patch(units=members, area=area, centre=(float(r.mean()), float(c.mean()))))
    return patches
