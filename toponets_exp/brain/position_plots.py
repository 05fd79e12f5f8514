"""Figures of scalar maps at the units' own positions in mm (TDANN's layout of a layer): one scatter panel per map,
each unit a small square at its (x, y), rasterized so that layers of 10⁵–10⁶ units stay quick to draw and small."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from toponets_exp.brain.plots import MAX_COLUMNS, PANEL_INCHES, save_png
from toponets_exp.brain.stats import ArrayLike, as_float64

ORIENTATION_PERIOD = 180.0  # cyclic maps are orientations in degrees, [0, 180)
MARKER_AREA = (0.05, 36.0)  # the smallest and largest marker area (points²)


def _checked(maps: Sequence[tuple[str, ArrayLike]], positions: ArrayLike,
             limit: float | None) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """Validated (name, float64 values (N,)) pairs and positions (N, 2)."""
    p = as_float64(positions)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 1:
        raise ValueError(f"positions must be (N, 2), an (x, y) in mm per unit, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("positions contain NaN or infinite entries")
    if not maps:
        raise ValueError("plot_position_maps needs at least one (name, values) map")
    checked = [(str(name), as_float64(values)) for name, values in maps]
    for name, values in checked:
        if values.shape != (p.shape[0],):
            raise ValueError(f"map {name!r} must hold one value per unit, shape ({p.shape[0]},), got {values.shape}")
    if limit is not None and not (np.isfinite(limit) and limit > 0):
        raise ValueError(f"limit={limit!r} must be a positive, finite colour range (or None: the largest |value|)")
    return checked, p


def _marker_area(n: int) -> float:
    """Marker area (points²) that about tiles a panel with n units."""
    return float(np.clip((PANEL_INCHES * 72) ** 2 / n, *MARKER_AREA))


def _colour_scale(values: list[np.ndarray], limit: float | None, cyclic: bool) -> tuple[dict, str]:
    """Scatter colour keywords (cmap, vmin, vmax; non-finite units grey) and the colour bar's label."""
    if cyclic:
        cmap = colormaps["twilight"].with_extremes(bad="0.8")
        return (dict(cmap=cmap, vmin=0.0, vmax=ORIENTATION_PERIOD),
                f"preferred orientation (deg, cyclic: 0 = {ORIENTATION_PERIOD:g}); grey: none")
    if limit is None:
        peaks = [float(np.abs(v[np.isfinite(v)]).max()) for v in values if np.isfinite(v).any()]
        limit = max(peaks, default=0.0) or 1.0
    cmap = colormaps["RdBu_r"].with_extremes(bad="0.8")
    return (dict(cmap=cmap, vmin=-limit, vmax=limit),
            f"value (one range, ±{limit:.3g}, for every panel); grey: not finite")


def position_maps_figure(maps: Sequence[tuple[str, ArrayLike]], positions: ArrayLike, title: str,
                         limit: float | None = None, cyclic: bool = False) -> Figure:
    """One panel per (name, values) map at the (N, 2) positions in mm, one colour bar: a diverging scale symmetric at
    ±`limit` (default the largest finite |value|), or with `cyclic` a cyclic one over orientations [0, 180)."""
    checked, p = _checked(maps, positions, limit)
    if cyclic:
        with np.errstate(invalid="ignore"):  # an infinite value has no orientation: grey
            checked = [(name, np.mod(v, ORIENTATION_PERIOD)) for name, v in checked]
    colours, label = _colour_scale([v for _, v in checked], limit, cyclic)
    columns = min(len(checked), MAX_COLUMNS)
    rows = math.ceil(len(checked) / columns)
    span = np.maximum(np.ptp(p, axis=0), 1e-12)
    aspect = float(np.clip(span[0] / span[1], 1.0, 3.0))  # wide sheets: lower panels
    fig = Figure(figsize=(columns * PANEL_INCHES + 1.2, rows * (PANEL_INCHES / aspect + 0.8) + 0.8),
                 layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    size = _marker_area(p.shape[0])
    for ax, (name, values) in zip(axes, checked):
        points = ax.scatter(p[:, 0], p[:, 1], c=values, s=size, marker="s", linewidths=0, rasterized=True,
                            plotnonfinite=True, **colours)
        ax.set_aspect("equal")
        ax.set_title(name)
        ax.set_xlabel("x (mm)")
        ax.set_ylabel("y (mm)")
    for ax in axes[len(checked):]:
        ax.set_axis_off()
    fig.colorbar(points, ax=list(axes[:len(checked)]), shrink=0.85, label=label)
    fig.suptitle(title)
    return fig


def plot_position_maps(maps: Sequence[tuple[str, ArrayLike]], positions: ArrayLike, path: str | Path, title: str,
                       limit: float | None = None, cyclic: bool = False) -> Path:
    """Write position_maps_figure as a PNG."""
    return save_png(position_maps_figure(maps, positions, title, limit, cyclic), path)
