"""Figure of the unit similarity c(d) against sheet distance, per layer and per kind of unit vector: layers in small
named groups, and the spread of c(d) across all layers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from toponets_exp.brain.plots import save_png
from toponets_exp.brain.smoothness import MIN_BIN_FRACTION, SimilarityCurve, reliable_bins

GROUP = 4  # layers per panel: more layers are split, in depth order, into groups of at most this many
MARKERS = ("o", "s", "^", "D")


def layer_groups(names: Sequence[str]) -> list[list[str]]:
    """The layers in depth order cut into consecutive groups of at most GROUP, as even in size as possible."""
    cuts = np.linspace(0, len(names), math.ceil(len(names) / GROUP) + 1).round().astype(int)
    return [list(names[a:b]) for a, b in zip(cuts, cuts[1:])]


def depth_colours(n: int) -> list[tuple[float, float, float, float]]:
    """n colours of a sequential map in depth order (first layer dark, last light; viridis's pale end left out)."""
    cmap = colormaps["viridis"]
    return [cmap(0.88 * i / max(n - 1, 1)) for i in range(n)]


def across_layers(curves: Mapping[str, SimilarityCurve]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distances in the reliable bins of at least two layers, and there the mean, min and max of c(d) over them."""
    values: dict[float, list[float]] = {}
    for curve in curves.values():
        keep = reliable_bins(curve)
        for d, c in zip(curve.distances[keep].tolist(), curve.similarity[keep].tolist()):
            values.setdefault(d, []).append(c)
    shared = sorted(d for d, v in values.items() if len(v) >= 2)
    stats = np.array([(np.mean(values[d]), min(values[d]), max(values[d])) for d in shared]).reshape(-1, 3)
    return np.array(shared), stats[:, 0], stats[:, 1], stats[:, 2]


def _group_panel(ax: Axes, curves: Mapping[str, SimilarityCurve], title: str) -> None:
    """A few layers' c(d), dark to light in depth order with distinct markers, each named in the legend."""
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    for (name, curve), colour, marker in zip(curves.items(), depth_colours(len(curves)), MARKERS):
        keep = reliable_bins(curve)
        ax.plot(curve.distances[keep], curve.similarity[keep], marker=marker, markersize=3.5, linewidth=1.2,
                color=colour, label=name)
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper right")


def _summary_panel(ax: Axes, curves: Mapping[str, SimilarityCurve], title: str) -> None:
    """The mean c(d) over all layers with its min–max band (distances that at least two layers reach)."""
    distance, mean, low, high = across_layers(curves)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.fill_between(distance, low, high, color="0.75", alpha=0.7, linewidth=0,
                    label="min–max over the layers reaching d")
    ax.plot(distance, mean, color="k", marker="o", markersize=3, linewidth=1.4,
            label="mean over the layers reaching d")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper right")


def similarity_figure(panels: Mapping[str, Mapping[str, SimilarityCurve]], title: str) -> Figure:
    """c(d), one row per kind of unit vector (weights, responses): the layers in depth-ordered groups of at most GROUP
    per panel, each named in its panel's legend; with more than one group, a last panel of the mean over all layers
    with its min–max band."""
    names = list(dict.fromkeys(name for curves in panels.values() for name in curves))
    groups = layer_groups(names)
    columns = len(groups) + (len(groups) > 1)
    fig = Figure(figsize=(3.3 * columns + 0.8, 2.9 * len(panels) + 0.9), layout="constrained")
    axes = fig.subplots(len(panels), columns, sharex=True, sharey="row", squeeze=False)
    for row, (kind, curves) in zip(axes, panels.items()):
        for ax, group in zip(row, groups):
            span = f"{kind}: layers {names.index(group[0]) + 1}–{names.index(group[-1]) + 1} of {len(names)}"
            _group_panel(ax, {n: curves[n] for n in group if n in curves}, span if len(groups) > 1 else kind)
        if len(groups) > 1:
            _summary_panel(row[-1], curves, f"{kind}: all {len(curves)} layers")
        row[0].set_ylabel(f"{kind}\nmean cosine similarity")
    fig.supxlabel(f"distance on the sheet (units; bins with >= {100 * MIN_BIN_FRACTION:g}% of the pairs)")
    fig.suptitle(title)
    return fig


def plot_similarity_curves(panels: Mapping[str, Mapping[str, SimilarityCurve]], path: str | Path,
                           title: str = "Unit similarity vs sheet distance, c(d)") -> Path:
    """Write similarity_figure as a PNG."""
    return save_png(similarity_figure(panels, title), path)
