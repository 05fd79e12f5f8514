"""PNG figures of the brain-likeness analyses, drawn with matplotlib's object API (no pyplot, no global state): what
every figure shares, and the figures of plain numbers (bars, curves, measured points, one map on the sheet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from toponets_exp.brain.stats import ArrayLike, as_float64
from toponets_exp.io import replacing

DPI = 130
PANEL_INCHES = 3.6
MAX_COLUMNS = 4


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG atomically (creating parent folders) and return its path."""
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    return Path(path)


def sheet_axes(ax: Axes, title: str) -> None:
    """Title, axis labels and integer ticks (unit rows and columns) of a panel that shows the cortical sheet."""
    ax.set_title(title)
    ax.set_xlabel("sheet column")
    ax.set_ylabel("sheet row")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))


def plot_bar(values: dict[str, float], path: str | Path, title: str, ylabel: str) -> Path:
    """Bar chart of one number per name (e.g. effective dimensionality per layer), values written on the bars."""
    fig = Figure(figsize=(max(4.0, 0.9 * len(values) + 2.0), 4.2), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(list(values), list(values.values()), color="tab:blue")
    ax.bar_label(bars, fmt="%.3g", fontsize="small")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=30 if len(values) > 4 else 0)
    return save_png(fig, path)


def _chance_line(ax: Axes, chance: tuple[float, str] | None) -> None:
    """A dotted horizontal line at the metric of a guess (value, what guess), when one is given."""
    if chance is not None:
        ax.axhline(chance[0], color="0.4", linestyle=":", linewidth=1.2, label=f"chance ({chance[1]})")


def _label_axes(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    """Title, axis labels, a light grid and the legend of a panel of curves or points."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def curves_figure(x: Sequence[float], curves: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str,
                  chance: tuple[float, str] | None = None) -> Figure:
    """Several y(x) curves on one axis (e.g. accuracy vs pruned fraction per model), with a chance line
    (value, what it is) when one is given."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, y in curves.items():
        ax.plot(x, y, marker="o", markersize=4, label=name)
    _chance_line(ax, chance)
    _label_axes(ax, title, xlabel, ylabel)
    return fig


def plot_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], path: str | Path, title: str,
                xlabel: str, ylabel: str, chance: tuple[float, str] | None = None) -> Path:
    """Write curves_figure as a PNG."""
    return save_png(curves_figure(x, curves, title, xlabel, ylabel, chance), path)


def downsampling_figure(curve: Sequence[Mapping[str, float]], metric: str, title: str, xlabel: str,
                        chance: tuple[float, str] | None = None) -> Figure:
    """The metric at each measured downsampling factor (rows of factor, kept_fraction, metric) as markers only, so
    nothing is drawn between factors that were not measured; one x tick per factor, with the share kept under it."""
    factors = [int(row["factor"]) for row in curve]
    values = [float(row["metric"]) for row in curve]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(factors, values, linestyle="None", marker="o", markersize=7, label=f"{metric} (measured)")
    for k, value in zip(factors, values):
        ax.annotate(f"{value:.3g}", (k, value), textcoords="offset points", xytext=(0, 7), ha="center",
                    fontsize="small")
    _chance_line(ax, chance)
    ax.set_xscale("log", base=2)
    ax.set_xticks(factors, [f"{k}\n({100 * row['kept_fraction']:.3g}% kept)" for k, row in zip(factors, curve)])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(min(factors) / 1.4, max(factors) * 1.4)
    ax.margins(y=0.12)  # room for the values written above the markers
    _label_axes(ax, title, xlabel, metric)
    return fig


def plot_downsampling(curve: Sequence[Mapping[str, float]], path: str | Path, metric: str, title: str, xlabel: str,
                      chance: tuple[float, str] | None = None) -> Path:
    """Write downsampling_figure as a PNG."""
    return save_png(downsampling_figure(curve, metric, title, xlabel, chance), path)


def sheet_map_figure(values2d: ArrayLike, title: str, cmap: str = "viridis", label: str | None = None,
                     vmax: float | None = None, over: str | None = None) -> Figure:
    """A single map on the sheet with a labelled colour bar; NaN units grey. With `vmax`, the scale is [0, vmax]
    and values above it are drawn in the colour `over` (the bar's arrow) instead of stretching the scale."""
    values = as_float64(values2d)
    if values.ndim != 2:
        raise ValueError(f"sheet_map_figure needs a 2-D map, got shape {values.shape}")
    colours = colormaps[cmap].with_extremes(bad="0.8", over=over)
    aspect = float(np.clip(values.shape[1] / values.shape[0], 0.5, 3.0))
    fig = Figure(figsize=(PANEL_INCHES * aspect + 1.6, PANEL_INCHES + 0.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap=colours, vmin=0.0 if vmax is not None else None, vmax=vmax,
                      interpolation="nearest")
    sheet_axes(ax, title)
    fig.colorbar(image, ax=ax, shrink=0.85, label=label, extend="max" if vmax is not None and over else "neither")
    return fig


def plot_sheet_map(values2d: ArrayLike, path: str | Path, title: str, cmap: str = "viridis", label: str | None = None,
                   vmax: float | None = None, over: str | None = None) -> Path:
    """Write sheet_map_figure as a PNG."""
    return save_png(sheet_map_figure(values2d, title, cmap, label, vmax, over), path)
