"""Figure of the unit similarity c(d) against sheet distance, per layer and per kind of unit vector."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure

from toponets_exp.brain.plots import save_png
from toponets_exp.brain.smoothness import MIN_BIN_FRACTION, SimilarityCurve, reliable_bins

LEGEND_MAX = 8  # more curves than this: a colour bar instead of a legend


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
