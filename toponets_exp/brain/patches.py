"""Category patches of a selectivity map, as TDANN finds them (neuroailab/TDANN, maps/it_map.py::find_patches and
maps/patch.py; Margalit et al., Neuron 2024).

`find_patches_at` takes TDANN's own input: a t per unit and the units' (x, y) positions; `mm` is the position units
per TDANN millimetre (1 for positions in mm). With P the positions and every length in mm scaled by `mm`:
- smoothing: the t value at each of 100 × 100 anchors spread evenly over [min P, max P]² (the smallest and largest
  coordinate of either axis, on both axes) is the Gaussian-weighted mean of every unit's t, σ = 2.4 mm, the kernel
  not truncated;
- patches: anchors with smoothed t ≥ `threshold` (2) and > 0 (an anchor ~90 mm from every unit, whose weights all
  underflow, is background), 8-connected; the units closer than 1 mm to one of a
  component's anchors are its members; a component of fewer than 3 units is dropped;
- a patch is kept when its area lies in [100, 4500] mm² and it has at least 10 units. Its area is the alpha shape of
  its units (TDANN's `concave_hull`, α = 0.1 / mm): the Delaunay triangles whose circumradius is under 10 mm, with
  every region those triangles enclose filled in.
TDANN writes the anchors into an image whose rows are flipped and rolled by one and maps the image back to positions
as (column / 100 · ptp(y), row / 100 · ptp(x)), from 0 rather than from min P, with the axes' extents swapped: each
component moves about one anchor pitch towards smaller y, by the extents' difference on non-square sheets, and by
−min P when the positions do not start at 0 (far enough, no unit lies near its anchors and the patch is lost).
`tdann_offsets=True` (the default) keeps all of that, as TDANN; False maps every anchor to its own position.

`find_patches` reads an (H, W) t map on the sheet: a unit at (row, col) sits at x = col, y = H − 1 − row (y up, as
TDANN's positions, starting at 0) and TDANN's 70 mm sheet is the sheet's extent E = max(H, W) − 1 units, so
mm = E / 70: σ = 0.034 E, members within 0.014 E, areas in [0.0204, 0.918] E², circumradius under 0.143 E.
A map holding a non-finite t has no patches (TDANN's t is 0 where a unit's variance is 0; ours is ±∞ there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, Delaunay, QhullError, cKDTree

from toponets_exp.brain.stats import ArrayLike, as_float64, unit_positions_of

TDANN_SHEET_MM = 70.0        # TDANN's VTC sheet (constants.VTC_SIZE)
TDANN_SIGMA_MM = 2.4         # find_patches' smoothing width
TDANN_ANCHORS = 100          # anchors per axis
TDANN_MEMBER_MM = 1.0        # a unit belongs to a component closer than this to one of its anchors
TDANN_AREA_MM2 = (100.0, 4500.0)
TDANN_MIN_UNITS = 10
TDANN_ALPHA = 0.1            # concave_hull's alpha: triangles of circumradius < 1/alpha mm are kept
UNITS_PER_MM = 1.0           # position units per TDANN millimetre when positions are in mm


@dataclass(frozen=True)
class Patch:
    """One patch: its member units (indices into the positions; flat indices on the sheet), the area of their alpha
    shape in squared position units (mm² for positions in mm; units² on the sheet) and the mean position of its units:
    (x, y) from find_patches_at, (row, col) from find_patches (TDANN's Patch.center is its hull's centroid)."""

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
    """Anchor coordinates (n,) on both axes and the (n, n) Gaussian-weighted means [y anchor, x anchor]; NaN at an
    anchor so far from every unit that all its weights underflow (TDANN's np.average raises there)."""
    anchors = np.linspace(positions.min(), positions.max(), n)
    gx = np.exp(-(anchors[:, None] - positions[None, :, 0]) ** 2 / (2 * sigma**2))
    gy = np.exp(-(anchors[:, None] - positions[None, :, 1]) ** 2 / (2 * sigma**2))
    with np.errstate(invalid="ignore"):
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


def _checked(t: ArrayLike, positions: ArrayLike, mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 t (N,) and positions (N, 2)."""
    t = as_float64(t)
    if t.ndim != 1 or t.size < 1:
        raise ValueError(f"t must be a 1-D array of one t per unit, got shape {t.shape}")
    p = unit_positions_of(positions, t.size)
    if not (np.isfinite(mm) and mm > 0):
        raise ValueError(f"mm={mm!r} must be a positive, finite number of position units per TDANN millimetre")
    return t, p


def _anchor_points(rows: np.ndarray, cols: np.ndarray, anchors: np.ndarray, span: np.ndarray,
                   tdann_offsets: bool) -> np.ndarray:
    """(x, y) positions of a component's anchors, image pixels (rows, cols): TDANN's mapping or each anchor's own."""
    if tdann_offsets:
        flipped = len(anchors) - 1 - rows
        return np.stack([cols / len(anchors) * span[1], flipped / len(anchors) * span[0]], axis=1)
    return np.stack([anchors[cols], anchors[rows]], axis=1)


def find_patches_at(t: ArrayLike, positions: ArrayLike, mm: float = UNITS_PER_MM, threshold: float = 2.0,
                    tdann_offsets: bool = True) -> list[Patch] | None:
    """TDANN's category patches of a t map at explicit (N, 2) positions, `mm` position units per TDANN millimetre
    (see the module docstring); None when a t is not finite."""
    t, positions = _checked(t, positions, mm)
    if not np.all(np.isfinite(t)):
        return None
    if np.ptp(positions) == 0:
        return []
    anchors, smooth = smoothed_anchors(t, positions, TDANN_SIGMA_MM * mm)
    n = len(anchors)
    # anchor row r is written to image row −r mod n, read back from the flipped image at row / n · extent
    image = smooth[(-np.arange(n)) % n] if tdann_offsets else smooth
    foreground = (image >= threshold) & (image > 0)  # TDANN zeroes values under the threshold, keeps those > 0
    labels, count = ndimage.label(foreground, structure=np.ones((3, 3), dtype=int))
    tree = cKDTree(positions)
    span = np.ptp(positions, axis=0)
    lo_area, hi_area = (a * mm**2 for a in TDANN_AREA_MM2)
    patches = []
    for k in range(1, count + 1):
        points = _anchor_points(*np.nonzero(labels == k), anchors, span, tdann_offsets)
        near = tree.query_ball_point(points, r=np.nextafter(TDANN_MEMBER_MM * mm, 0))
        members = np.unique(np.concatenate([np.asarray(m, dtype=int) for m in near]))
        if len(members) < 3:
            continue
        area = alpha_shape_area(positions[members], 1.0 / (TDANN_ALPHA / mm))
        if lo_area <= area <= hi_area and len(members) >= TDANN_MIN_UNITS:
            x, y = positions[members].mean(axis=0)
            patches.append(Patch(units=members, area=area, centre=(float(x), float(y))))
    return patches


def find_patches(t_map: ArrayLike, threshold: float = 2.0, tdann_offsets: bool = True) -> list[Patch] | None:
    """TDANN's category patches of an (H, W) t map (sizes scaled from its 70 mm sheet); None when a t is not finite."""
    t = as_float64(t_map)
    if t.ndim != 2:
        raise ValueError(f"a selectivity map is a 2-D image, got shape {t.shape}")
    positions = unit_positions(t.shape)
    extent = float(np.ptp(positions))
    mm = extent / TDANN_SHEET_MM if extent > 0 else UNITS_PER_MM  # a single unit has no patches at any scale
    patches = find_patches_at(t.ravel(), positions, mm, threshold, tdann_offsets)
    if patches is None:
        return None
    centres = [np.divmod(p.units, t.shape[1]) for p in patches]
    return [replace(p, centre=(float(r.mean()), float(c.mean()))) for p, (r, c) in zip(patches, centres)]
