"""Figure of each layer's preferred-orientation map on the sheet (gratings analysis): the preference as a hue, at full
colour only where the unit is orientation-selective."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from toponets_exp.brain.gratings import SELECTIVE_CV
from toponets_exp.brain.plots import MAX_COLUMNS, PANEL_INCHES, save_png, sheet_axes

HUES = "hsv"         # cyclic and saturated everywhere: a faded (greyed) unit never looks like a selective one
FADE = 0.15          # the share of its hue a unit that is not selective keeps; the rest is FADED_GREY
FADED_GREY = 0.8
NO_PREFERENCE = 0.0  # black: the unit has no preferred orientation (its fit failed)


def orientation_colours(theta: np.ndarray, selective: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours: the hue of each preferred orientation (cyclic over [0°, 180°)), faded toward light grey
    where the unit is not orientation-selective, black where it has no preference."""
    finite = np.isfinite(theta)
    hue = colormaps[HUES](np.mod(np.where(finite, theta, 0.0), 180.0) / 180.0)[..., :3]
    rgb = np.where(np.asarray(selective, dtype=bool)[..., None], hue, FADE * hue + (1.0 - FADE) * FADED_GREY)
    rgb[~finite] = NO_PREFERENCE
    return rgb


def _pinwheels(ax: Axes, points: Sequence[tuple[float, float]]) -> None:
    """Pinwheel centres (row, col) as white rings edged in black (visible on light and dark hues)."""
    cols, rows = [c for _, c in points], [r for r, _ in points]
    ax.scatter(cols, rows, s=30, facecolors="none", edgecolors="black", linewidths=2.4)
    ax.scatter(cols, rows, s=30, facecolors="none", edgecolors="white", linewidths=1.0)


def _key(fig: Figure) -> None:
    """What full colour, faded colour, black and the rings mean, under the panels."""
    hue = np.array(colormaps[HUES](0.6)[:3])
    handles = [Patch(facecolor=hue, label=f"selective (responsive, circular variance < {SELECTIVE_CV:g}): full colour"),
               Patch(facecolor=FADE * hue + (1.0 - FADE) * FADED_GREY,
                     label="not selective: colour faded toward grey (preference unreliable)"),
               Patch(facecolor=str(NO_PREFERENCE), label="no preferred orientation: black"),
               Line2D([], [], linestyle="None", marker="o", markerfacecolor="none", markeredgecolor="black",
                      label="pinwheel centre (TDANN's detector)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small", frameon=False)


def orientation_figure(maps: Mapping[str, np.ndarray], selective: Mapping[str, np.ndarray], notes: Mapping[str, str],
                       title: str, marks: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> Figure:
    """One preferred-orientation map per layer (orientation_colours: full colour only for `selective` units);
    `notes` (per layer) under each panel's name; `marks` (row, col) circled (pinwheel centres); a key of the colours."""
    if not maps:
        raise ValueError("orientation_figure needs at least one map")
    columns = min(len(maps), MAX_COLUMNS)
    rows = math.ceil(len(maps) / columns)
    shapes = [m.shape for m in maps.values()]
    heights = [max(min(1.0, h / w) for h, w in shapes[r * columns:(r + 1) * columns]) for r in range(rows)]
    image_width = 0.85 * PANEL_INCHES  # a panel's width less its axis labels
    fig = Figure(figsize=(columns * PANEL_INCHES + 1.2, sum(heights) * image_width + rows * 1.1 + 1.4),
                 layout="constrained")  # each row as high as its tallest sheet needs: wide sheets, lower rows
    axes = np.atleast_1d(fig.subplots(rows, columns, height_ratios=heights)).ravel()
    for ax, (name, theta) in zip(axes, maps.items()):
        ax.imshow(orientation_colours(theta, selective[name]), interpolation="nearest")
        _pinwheels(ax, (marks or {}).get(name, ()))
        sheet_axes(ax, f"{name}\n{notes.get(name, '')}")
        ax.title.set_fontsize("small")
    for ax in axes[len(maps):]:
        ax.set_axis_off()
    hues = ScalarMappable(norm=Normalize(0.0, 180.0), cmap=colormaps[HUES])
    bar = fig.colorbar(hues, ax=list(axes[:len(maps)]), shrink=0.85,
                       label="preferred orientation (°, cyclic)\nin full colour: the selective units")
    bar.set_ticks([0, 45, 90, 135, 180])
    _key(fig)
    fig.suptitle(title)
    return fig


def plot_orientation_maps(maps: Mapping[str, np.ndarray], selective: Mapping[str, np.ndarray],
                          notes: Mapping[str, str], path: str | Path, title: str,
                          marks: Mapping[str, Sequence[tuple[float, float]]] | None = None) -> Path:
    """Write orientation_figure as a PNG."""
    return save_png(orientation_figure(maps, selective, notes, title, marks), path)
