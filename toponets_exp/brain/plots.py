"""PNG figures of the brain-likeness analyses, drawn with matplotlib's object API (no pyplot, no global state)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from toponets_exp.brain.selectivity import SelectivityMap
from toponets_exp.brain.smoothness import MIN_BIN_FRACTION, SimilarityCurve, reliable_bins, unit_vectors
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


def _sheet_axes(ax: Axes, title: str) -> None:
    """Title and axis labels of a panel that shows the cortical sheet."""
    ax.set_title(title)
    ax.set_xlabel("sheet column")
    ax.set_ylabel("sheet row")


def _robust_unit_range(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] between the 1st and 99th percentiles (clipped), 0.5 where the values are constant."""
    lo, hi = np.percentile(x, [1, 99])
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.full_like(x, 0.5)


def sheet_principal_components(vectors: ArrayLike, sheet: tuple[int, int],
                               k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Scores (H, W, k) of the units' unit-norm vectors on their top k principal components, and variance shares."""
    h, w = (int(s) for s in sheet)
    x = unit_vectors(vectors, (h, w))
    n_comp = min(k, *x.shape)
    pca = PCA(n_components=n_comp, random_state=0).fit(x)
    scores = np.zeros((h * w, k))
    scores[:, :n_comp] = pca.transform(x)
    shares = np.zeros(k)
    shares[:n_comp] = pca.explained_variance_ratio_
    return scores.reshape(h, w, k), shares


def sheet_rgb(scores: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours in [0, 1] of a sheet's scores on PCs 1–3 (each robustly rescaled)."""
    return np.stack([_robust_unit_range(scores[..., c]) for c in range(3)], axis=-1)


def plot_weight_sheet(vectors: ArrayLike, sheet: tuple[int, int], path: str | Path, title: str) -> Path:
    """Sheet of unit weight vectors: PCs 1–3 as RGB (left) and PC 1 alone with a colour bar (right).

    Each unit's vector is scaled to unit norm first (TopoLoss aligns directions, cosine smoothness ignores norms),
    then projected on the top principal components of all units. Units with similar weights get similar colours,
    so a topographic layer shows smooth colour patches and a non-topographic one salt-and-pepper noise; the
    PC-1 panel gives the dominant axis quantitatively.
    """
    scores, shares = sheet_principal_components(vectors, sheet, 3)
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


def plot_similarity_curves(curves: dict[str, SimilarityCurve], path: str | Path,
                           title: str = "Unit similarity vs sheet distance") -> Path:
    """Mean cosine similarity against sheet distance, one line per model or layer (sparse far bins left out)."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    for name, curve in curves.items():
        keep = reliable_bins(curve)
        ax.plot(curve.distances[keep], curve.similarity[keep], marker="o", markersize=3, label=name)
    ax.set_xlabel(f"distance on the sheet (units; bins with >= {100 * MIN_BIN_FRACTION:g}% of the pairs)")
    ax.set_ylabel("mean cosine similarity")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return save_png(fig, path)


def plot_selectivity_maps(maps: Sequence[SelectivityMap], path: str | Path, title: str) -> Path:
    """One t-map panel per category on a shared symmetric diverging scale, the threshold contour in black."""
    if not maps:
        raise ValueError("plot_selectivity_maps needs at least one SelectivityMap")
    columns = min(len(maps), MAX_COLUMNS)
    rows = math.ceil(len(maps) / columns)
    fig = Figure(figsize=(columns * PANEL_INCHES + 1.0, rows * PANEL_INCHES + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    finite = np.concatenate([np.abs(m.t[np.isfinite(m.t)]) for m in maps])
    lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    for ax, sel in zip(axes, maps):
        image = ax.imshow(sel.t, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        if np.nanmin(sel.t) < sel.threshold < np.nanmax(sel.t):
            ax.contour(sel.t, levels=[sel.threshold], colors="k", linewidths=0.8)
        _sheet_axes(ax, f"{sel.category}\n{100 * sel.fraction_selective:.1f}% units t > {sel.threshold:g}, "
                        f"Moran's I {sel.morans_i:.2f}")
    for ax in axes[len(maps):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes[:len(maps)]), shrink=0.85, label="Welch t (category vs rest)")
    fig.suptitle(title)
    return save_png(fig, path)


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


def plot_curves(x: Sequence[float], curves: dict[str, Sequence[float]], path: str | Path, title: str,
                xlabel: str, ylabel: str) -> Path:
    """Several y(x) curves on one axis (e.g. accuracy vs pruned fraction per model)."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, y in curves.items():
        ax.plot(x, y, marker="o", markersize=4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_png(fig, path)


def plot_sheet_map(values2d: ArrayLike, path: str | Path, title: str, cmap: str = "viridis") -> Path:
    """A single map on the sheet (e.g. language selectivity, integration window) with a colour bar."""
    values = as_float64(values2d)
    if values.ndim != 2:
        raise ValueError(f"plot_sheet_map needs a 2-D map, got shape {values.shape}")
    aspect = float(np.clip(values.shape[1] / values.shape[0], 0.5, 3.0))
    fig = Figure(figsize=(PANEL_INCHES * aspect + 1.4, PANEL_INCHES + 0.4), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap=cmap, interpolation="nearest")
    _sheet_axes(ax, title)
    fig.colorbar(image, ax=ax, shrink=0.85)
    return save_png(fig, path)
