"""PNG figures of the brain-likeness analyses, drawn with matplotlib's object API (no pyplot, no global state)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure

from toponets_exp.brain.selectivity import SelectivityMap
from toponets_exp.brain.smoothness import MIN_BIN_FRACTION, SimilarityCurve, reliable_bins
from toponets_exp.brain.stats import ArrayLike, as_float64
from toponets_exp.io import replacing
from toponets_exp.topo.sheet_pca import sheet_principal_components, sheet_rgb

DPI = 130
PANEL_INCHES = 3.6
MAX_COLUMNS = 4
LEGEND_MAX = 8  # more curves than this: a colour bar instead of a legend


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG atomically (creating parent folders) and return its path."""
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    return Path(path)


def _sheet_axes(ax: Axes, title: str) -> None:
    """Title and axis labels of a panel that shows the cortical sheet."""
    ax.set_title(title)
    ax.set_xlabel("sheet column")
    ax.set_ylabel("sheet row")


def plot_weight_sheet(vectors: ArrayLike, sheet: tuple[int, int], path: str | Path, title: str) -> Path:
    """Sheet of unit weight vectors: PCs 1–3 as RGB (left) and PC 1 alone with a colour bar (right).

    Each unit's vector is scaled to unit norm first (TopoLoss aligns directions, cosine smoothness ignores norms),
    then projected on the top principal components of all units. Units with similar weights get similar colours,
    so a topographic layer shows smooth colour patches and a non-topographic one salt-and-pepper noise; the
    PC-1 panel gives the dominant axis quantitatively.
    """
    scores, shares = sheet_principal_components(as_float64(vectors), sheet, 3)
    rgb = sheet_rgb(scores)
    fig = Figure(figsize=(2 * PANEL_INCHES + 1.0, PANEL_INCHES + 0.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(rgb, interpolation="nearest")
    _sheet_axes(left, "PC1-3 as RGB (" + ", ".join(f"{100 * s:.0f}%" for s in shares) + " var.)")
    lim = float(np.max(np.abs(scores[..., 0]))) or 1.0
    image = right.imshow(scores[..., 0], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    _sheet_axes(right, f"PC1 score ({100 * shares[0]:.0f}% var.)")
    fig.colorbar(image, ax=right, shrink=0.85, label="PC1 score")
    fig.suptitle(title)
    return save_png(fig, path)


def depth_colours(n: int) -> list[tuple[float, float, float, float]]:
    """n colours of a sequential map in depth order (first layer dark, last light; viridis's pale end left out)."""
    cmap = colormaps["viridis"]
    return [cmap(0.88 * i / max(n - 1, 1)) for i in range(n)]


def similarity_figure(panels: Mapping[str, Mapping[str, SimilarityCurve]], title: str) -> Figure:
    """c(d) per layer, one panel per kind of unit vector (weights, responses), layers coloured by depth.

    A layer keeps its colour across panels; with more than LEGEND_MAX layers a colour bar replaces the legend."""
    names = list(dict.fromkeys(name for curves in panels.values() for name in curves))
    colours = dict(zip(names, depth_colours(len(names))))
    fig = Figure(figsize=(5.0 * len(panels) + 1.4, 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    for ax, (panel, curves) in zip(axes, panels.items()):
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        for name, curve in curves.items():
            keep = reliable_bins(curve)
            ax.plot(curve.distances[keep], curve.similarity[keep], marker="o", markersize=3, color=colours[name],
                    label=name)
        ax.set_xlabel(f"distance on the sheet (units; bins with >= {100 * MIN_BIN_FRACTION:g}% of the pairs)")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean cosine similarity")
    if len(names) <= LEGEND_MAX:
        axes[-1].legend(fontsize="small", title="layer (dark: first)")
    else:
        depth = ScalarMappable(norm=Normalize(-0.5, len(names) - 0.5), cmap=ListedColormap(list(colours.values())))
        bar = fig.colorbar(depth, ax=list(axes), shrink=0.9, label="layer depth")
        bar.set_ticks([0, len(names) - 1], labels=[f"1: {names[0]}", f"{len(names)}: {names[-1]}"])
    fig.suptitle(title)
    return fig


def plot_similarity_curves(panels: Mapping[str, Mapping[str, SimilarityCurve]], path: str | Path,
                           title: str = "Unit similarity vs sheet distance, c(d)") -> Path:
    """Write similarity_figure as a PNG."""
    return save_png(similarity_figure(panels, title), path)


def selectivity_figure(maps: Sequence[SelectivityMap], title: str, stimuli: str,
                       labels: Mapping[str, str] | None = None) -> Figure:
    """One t-map panel per category (`labels` names what each category is) on one symmetric colour range stated on
    the colour bar, the selectivity threshold as a black contour, the stimuli named under the title."""
    if not maps:
        raise ValueError("selectivity_figure needs at least one SelectivityMap")
    labels = labels or {}
    columns = min(len(maps), MAX_COLUMNS)
    rows = math.ceil(len(maps) / columns)
    aspect = float(np.clip(maps[0].t.shape[1] / maps[0].t.shape[0], 1.0, 3.0))  # wide sheets: lower panels
    fig = Figure(figsize=(columns * PANEL_INCHES + 1.2, rows * (PANEL_INCHES / aspect + 0.9) + 0.8),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    finite = np.concatenate([np.abs(m.t[np.isfinite(m.t)]) for m in maps])
    lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    thresholds = sorted({m.threshold for m in maps})
    for ax, sel in zip(axes, maps):
        image = ax.imshow(sel.t, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        if np.nanmin(sel.t) < sel.threshold < np.nanmax(sel.t):
            ax.contour(sel.t, levels=[sel.threshold], colors="k", linewidths=0.8)
        _sheet_axes(ax, f"{labels.get(str(sel.category), sel.category)}\n{100 * sel.fraction_selective:.1f}% "
                        f"selective, Moran's I {sel.morans_i:.2f}")
    for ax in axes[len(maps):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes[:len(maps)]), shrink=0.85,
                 label=f"Welch t, category vs all other stimuli (one range, ±{lim:.1f}, for every panel)")
    fig.suptitle(f"{title}\nblack line: t = {', '.join(f'{t:g}' for t in thresholds)} (selective above); "
                 f"stimuli: {stimuli}")
    return fig


def plot_selectivity_maps(maps: Sequence[SelectivityMap], path: str | Path, title: str, stimuli: str,
                          labels: Mapping[str, str] | None = None) -> Path:
    """Write selectivity_figure as a PNG."""
    return save_png(selectivity_figure(maps, title, stimuli, labels), path)


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


def curves_figure(x: Sequence[float], curves: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str,
                  chance: tuple[float, str] | None = None) -> Figure:
    """Several y(x) curves on one axis (e.g. accuracy vs pruned fraction per model), with a chance line
    (value, what it is) when one is given."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, y in curves.items():
        ax.plot(x, y, marker="o", markersize=4, label=name)
    if chance is not None:
        ax.axhline(chance[0], color="0.4", linestyle=":", linewidth=1.2, label=f"chance ({chance[1]})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], path: str | Path, title: str,
                xlabel: str, ylabel: str, chance: tuple[float, str] | None = None) -> Path:
    """Write curves_figure as a PNG."""
    return save_png(curves_figure(x, curves, title, xlabel, ylabel, chance), path)


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
    _sheet_axes(ax, title)
    fig.colorbar(image, ax=ax, shrink=0.85, label=label, extend="max" if vmax is not None and over else "neither")
    return fig


def plot_sheet_map(values2d: ArrayLike, path: str | Path, title: str, cmap: str = "viridis", label: str | None = None,
                   vmax: float | None = None, over: str | None = None) -> Path:
    """Write sheet_map_figure as a PNG."""
    return save_png(sheet_map_figure(values2d, title, cmap, label, vmax, over), path)


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
        _sheet_axes(ax, f"{name}\n{notes.get(name, '')}")
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
