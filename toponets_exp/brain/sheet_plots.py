"""Figures of maps on the sheet per layer: the weight sheet (PCs as colours) and the category-selectivity t maps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from toponets_exp.brain.plots import MAX_COLUMNS, PANEL_INCHES, save_png, sheet_axes
from toponets_exp.brain.selectivity import SelectivityMap
from toponets_exp.brain.stats import ArrayLike, as_float64
from toponets_exp.topo.sheet_pca import FULL_SATURATION_SHARE, sheet_principal_components, sheet_rgb


def weight_sheet_figure(vectors: ArrayLike, sheet: tuple[int, int], title: str) -> Figure:
    """Sheet of unit weight vectors: PCs 1–3 as RGB (left) and PC 1 alone with a colour bar (right).

    Each unit's vector is scaled to unit norm first (TopoLoss aligns directions, cosine smoothness ignores norms),
    then projected on the top principal components of all units. Units with similar weights get similar colours,
    so a topographic layer shows smooth colour patches and a non-topographic one salt-and-pepper noise; each PC's
    colour saturation follows its share of the variance (sheet_rgb), so PCs that explain little stay near grey; the
    PC-1 panel gives the dominant axis quantitatively.
    """
    scores, shares = sheet_principal_components(as_float64(vectors), sheet, 3)
    fig = Figure(figsize=(2 * PANEL_INCHES + 1.0, PANEL_INCHES + 0.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(sheet_rgb(scores, shares), interpolation="nearest")
    sheet_axes(left, "PC1-3 as RGB (" + ", ".join(f"{100 * s:.0f}%" for s in shares) + " var.)\n"
               f"saturation ∝ variance explained (full at ≥ {100 * FULL_SATURATION_SHARE:.0f}%)")
    lim = float(np.max(np.abs(scores[..., 0]))) or 1.0
    image = right.imshow(scores[..., 0], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    sheet_axes(right, f"PC1 score ({100 * shares[0]:.0f}% var.)")
    fig.colorbar(image, ax=right, shrink=0.85, label="PC1 score")
    fig.suptitle(title)
    return fig


def plot_weight_sheet(vectors: ArrayLike, sheet: tuple[int, int], path: str | Path, title: str) -> Path:
    """Write weight_sheet_figure as a PNG."""
    return save_png(weight_sheet_figure(vectors, sheet, title), path)


def shared_t_limit(maps: Iterable[SelectivityMap]) -> float:
    """The largest finite |t| over the maps (1 when there is none): one symmetric colour range for all of them."""
    peaks = [float(np.abs(m.t[np.isfinite(m.t)]).max()) for m in maps if np.isfinite(m.t).any()]
    return max(peaks, default=0.0) or 1.0


def cell_edges(mask: np.ndarray) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The cell edges, as (x, y) segments in image coordinates (cell (r, c) spans c ± ½, r ± ½), that separate the
    cells of a 2-D `mask` from the others or from the outside of the sheet."""
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    vertical = np.argwhere(padded[1:-1, :-1] != padded[1:-1, 1:])   # (row r, edge left of column c)
    horizontal = np.argwhere(padded[:-1, 1:-1] != padded[1:, 1:-1])  # (edge above row r, column c)
    return ([((c - 0.5, r - 0.5), (c - 0.5, r + 0.5)) for r, c in vertical.tolist()]
            + [((c - 0.5, r - 0.5), (c + 0.5, r - 0.5)) for r, c in horizontal.tolist()])


def _outline(ax: Axes, sel: SelectivityMap) -> None:
    """The boundary of the selective cells (t above the threshold), drawn along the cells' edges."""
    edges = cell_edges(sel.t > sel.threshold)
    if edges:
        ax.add_collection(LineCollection(edges, colors="k", linewidths=1.0, label="selective cells' outline"),
                          autolim=False)


def selectivity_figure(maps: Sequence[SelectivityMap], title: str, stimuli: str, lim: float,
                       labels: Mapping[str, str] | None = None) -> Figure:
    """One t-map panel per category (`labels` names what each category is) on the symmetric colour range ±`lim`
    that every layer's figure shares (stated on the colour bar), the selective cells outlined along their edges, the
    stimuli named under the title."""
    if not maps:
        raise ValueError("selectivity_figure needs at least one SelectivityMap")
    labels = labels or {}
    columns = min(len(maps), MAX_COLUMNS)
    rows = math.ceil(len(maps) / columns)
    aspect = float(np.clip(maps[0].t.shape[1] / maps[0].t.shape[0], 1.0, 3.0))  # wide sheets: lower panels
    fig = Figure(figsize=(columns * PANEL_INCHES + 1.2, rows * (PANEL_INCHES / aspect + 0.9) + 0.8),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    thresholds = sorted({m.threshold for m in maps})
    for ax, sel in zip(axes, maps):
        image = ax.imshow(sel.t, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        _outline(ax, sel)
        sheet_axes(ax, f"{labels.get(str(sel.category), sel.category)}\n{100 * sel.fraction_selective:.1f}% "
                        f"selective, Moran's I {sel.morans_i:.2f}")
    for ax in axes[len(maps):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes[:len(maps)]), shrink=0.85, label="Welch t, category vs all other stimuli\n"
                 f"(one range, ±{lim:.1f}, for every panel and every layer)")
    fig.suptitle(f"{title}\nblack outline: cells with t > {', '.join(f'{t:g}' for t in thresholds)} (selective); "
                 f"stimuli: {stimuli}")
    return fig


def plot_selectivity_maps(maps: Sequence[SelectivityMap], path: str | Path, title: str, stimuli: str, lim: float,
                          labels: Mapping[str, str] | None = None) -> Path:
    """Write selectivity_figure as a PNG."""
    return save_png(selectivity_figure(maps, title, stimuli, lim, labels), path)
