"""Figure of each layer's preferred-orientation map on the sheet (gratings analysis)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from toponets_exp.brain.plots import MAX_COLUMNS, PANEL_INCHES, save_png, sheet_axes


def orientation_figure(maps: Mapping[str, np.ndarray], notes: Mapping[str, str], title: str,
                       marks: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> Figure:
    """One preferred-orientation map per layer on a cyclic colour map over [0°, 180°) (0° and 180° the same colour);
    units without a preference grey; `notes` (per layer) under each panel's name; `marks` (row, col) drawn as white
    circles (pinwheel centres)."""
    if not maps:
        raise ValueError("orientation_figure needs at least one map")
    columns = min(len(maps), MAX_COLUMNS)
    rows = math.ceil(len(maps) / columns)
    height = np.mean([min(1.0, m.shape[0] / m.shape[1]) for m in maps.values()]) * PANEL_INCHES  # wide sheets: lower
    fig = Figure(figsize=(columns * PANEL_INCHES + 1.2, rows * (height + 1.0) + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    colours = colormaps["twilight"].with_extremes(bad="0.8")
    for ax, (name, theta) in zip(axes, maps.items()):
        image = ax.imshow(np.mod(theta, 180.0), cmap=colours, vmin=0.0, vmax=180.0, interpolation="nearest")
        points = (marks or {}).get(name, ())
        if points:
            ax.scatter([c for _, c in points], [r for r, _ in points], s=28, facecolors="none", edgecolors="white",
                       linewidths=1.2)
        sheet_axes(ax, f"{name}\n{notes.get(name, '')}")
        ax.title.set_fontsize("small")
    for ax in axes[len(maps):]:
        ax.set_axis_off()
    bar = fig.colorbar(image, ax=list(axes[:len(maps)]), shrink=0.85, label="preferred orientation (°, cyclic)")
    bar.set_ticks([0, 45, 90, 135, 180])
    fig.suptitle(title)
    return fig


def plot_orientation_maps(maps: Mapping[str, np.ndarray], notes: Mapping[str, str], path: str | Path,
                          title: str, marks: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> Path:
    """Write orientation_figure as a PNG."""
    return save_png(orientation_figure(maps, notes, title, marks), path)
