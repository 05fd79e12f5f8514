"""Sweep figures: task metric vs topography with the Pareto front, every metric vs τ, efficiency vs τ = 0."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from toponets_exp.brain.efficiency import DOWNSAMPLING_AXIS, PRUNING_AXIS
from toponets_exp.brain.plots import save_png
from toponets_exp.sweep_report.runs import Run
from toponets_exp.sweep_report.table import METRICS, pareto_front, setting_keys

LABELS = {"test_acc": "test accuracy", "test_ppl": "test perplexity", "test_loss": "test loss",
          "eval_acc": "accuracy (evaluation: linear read-out without a classifier)",
          "topo_loss": "TopoLoss (unweighted mean)", "weight_smoothness": "weight smoothness",
          "response_smoothness": "response smoothness", "effective_dim": "effective dimensionality",
          "tdann_smoothness": "TDANN smoothness of the selectivity maps",
          "morans_i_topolm": "Moran's I (TopoLM) of the selectivity maps", "topoformer_tgi": "Topoformer TGI",
          "orientation_selective": "orientation-selective share (gratings)",
          "orientation_smoothness": "TDANN smoothness of the orientation maps",
          "spatial_entropy": "spatial entropy of orientations (All-TNN, nats)",
          "cluster_radius": "orientation cluster radius (All-TNN, units)",
          "radial_spectrum_slope": "radial power spectrum slope, orientation maps (All-TNN)",
          "pinwheel_density": "pinwheels per column spacing² (TDANN's detector)",
          "patches": "category patches per selectivity map (TDANN)"}


def _group_name(row: dict[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys) or "runs"


def plot_pareto(table: Sequence[dict[str, Any]], metric: str, path: Path) -> Path | None:
    """Task metric vs weight smoothness (or 1 − TopoLoss without an evaluation), Pareto-optimal runs joined."""
    done = [r for r in table if r["status"] == "finished" and r[metric] is not None]
    use_smoothness = any(r["weight_smoothness"] is not None for r in done)
    x_name = "weight_smoothness" if use_smoothness else "topo_loss"
    done = [r for r in done if r[x_name] is not None]
    if not done:
        return None
    xs = [r[x_name] if use_smoothness else 1.0 - r[x_name] for r in done]
    ys = [r[metric] for r in done]
    better_up = METRICS[metric][1]
    front = pareto_front([(x, y if better_up else -y) for x, y in zip(xs, ys)])
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.subplots()
    ax.scatter(xs, ys, c=["tab:red" if f else "tab:gray" for f in front], zorder=3)
    for x, y, row in zip(xs, ys, done):
        ax.annotate(f"τ={row['tau']:g}" if row["tau"] is not None else "", (x, y), textcoords="offset points",
                    xytext=(4, 4), fontsize="small")
    on_front = sorted((x, y) for x, y, f in zip(xs, ys, front) if f)
    ax.plot([p[0] for p in on_front], [p[1] for p in on_front], color="tab:red", marker="o", markersize=11,
            markerfacecolor="none", label="Pareto front")
    ax.set_xlabel(LABELS[x_name] if use_smoothness else "1 − TopoLoss (no evaluation in these runs)")
    ax.set_ylabel(LABELS[metric])
    ax.set_title(f"{LABELS[metric]} vs topography ({len(done)} runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_png(fig, path)


# The least y-span of a panel: an absolute span for metrics bounded in [0, 1] (or so), else a share of the mean;
# with seeds, at least SD_SPAN pooled seed sds. A spread below the noise then looks flat.
MIN_SPAN = {"test_acc": 0.05, "eval_acc": 0.05, "topo_loss": 0.05, "weight_smoothness": 0.05,
            "response_smoothness": 0.05,
            "tdann_smoothness": 0.05, "morans_i_topolm": 0.05, "topoformer_tgi": 0.05, "orientation_selective": 0.05,
            "orientation_smoothness": 0.05, "spatial_entropy": 0.1, "cluster_radius": 0.5}
MIN_RELATIVE_SPAN = 0.05
SD_SPAN = 6.0
BOUNDS = {"test_acc": (0.0, 1.0), "eval_acc": (0.0, 1.0)}  # a range is shifted (not cut) to stay inside these


def pooled_sd(groups: Sequence[dict[str, Any]], metric: str) -> float | None:
    """Root mean square of the settings' seed sds of a metric, None without replicates."""
    sds = [g[f"{metric}_sd"] for g in groups if g.get(f"{metric}_sd") is not None]
    return float(np.sqrt(np.mean(np.square(sds)))) if sds else None


def y_range(values: Sequence[float], metric: str, sd: float | None) -> tuple[float, float]:
    """A y-range holding the values, centred on them (moved inside the metric's BOUNDS), at least MIN_SPAN (or
    MIN_RELATIVE_SPAN of the mean) and SD_SPAN seed sds wide."""
    lo, hi = float(min(values)), float(max(values))
    span = 1.1 * max(hi - lo, MIN_SPAN.get(metric, MIN_RELATIVE_SPAN * abs(float(np.mean(values)))),
                     SD_SPAN * (sd or 0.0))
    bottom = (lo + hi - span) / 2.0
    floor, ceiling = BOUNDS.get(metric, (-np.inf, np.inf))
    if span < ceiling - floor:
        bottom = min(max(bottom, floor), ceiling - span)
    return bottom, bottom + span


def metrics_vs_tau_figure(table: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]],
                          varying: Sequence[str]) -> Figure | None:
    """One panel per metric: mean ± sd over seeds per setting (lines) and each run (dots), τ on a symlog axis; each
    panel's y-range is at least a sensible span and SD_SPAN seed sds wide, its pooled seed sd written on it."""
    done = [r for r in table if r["status"] == "finished" and r["tau"] is not None]
    metrics = [m for m in LABELS if any(r[m] is not None for r in done)]
    if not done or not metrics:
        return None
    keys = [k for k in setting_keys(varying) if k != "topo.weight"]
    columns = min(len(metrics), 3)
    rows_ = -(-len(metrics) // columns)
    fig = Figure(figsize=(4.4 * columns, 3.6 * rows_), layout="constrained")
    axes = fig.subplots(rows_, columns, squeeze=False).ravel()
    for extra in axes[len(metrics):]:
        extra.set_visible(False)
    taus = sorted({r["tau"] for r in done})
    names = sorted({_group_name(g, keys) for g in groups})
    for ax, metric in zip(axes, metrics):
        for i, name in enumerate(names):
            color = f"C{i % 10}"
            members = sorted((g for g in groups if _group_name(g, keys) == name and g[metric] is not None),
                             key=lambda g: g["tau"])
            ax.errorbar([g["tau"] for g in members], [g[metric] for g in members],
                        yerr=[g[f"{metric}_sd"] or 0.0 for g in members], color=color, marker="o", capsize=3,
                        label=name)
            runs = [r for r in done if _group_name(r, keys) == name and r[metric] is not None]
            ax.scatter([r["tau"] for r in runs], [r[metric] for r in runs], color=color, alpha=0.35, s=12)
        sd = pooled_sd(groups, metric)
        ax.set_ylim(*y_range([r[metric] for r in done if r[metric] is not None], metric, sd))
        ax.text(0.02, 0.03, f"seed sd {sd:.2g}" if sd is not None else "one seed: no sd", transform=ax.transAxes,
                fontsize="small", color="0.35")
        ax.set_xscale("symlog", linthresh=0.5)
        ax.set_xticks(taus, [f"{t:g}" for t in taus])
        ax.minorticks_off()
        ax.set_xlabel("τ (topo.weight)")
        ax.set_ylabel(LABELS[metric])
        ax.grid(alpha=0.3)
    if len(names) > 1:
        axes[0].legend(fontsize="small")
    return fig


def plot_metrics_vs_tau(table: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]], varying: Sequence[str],
                        path: Path) -> Path | None:
    """Write metrics_vs_tau_figure as a PNG (None when there is nothing to draw)."""
    fig = metrics_vs_tau_figure(table, groups, varying)
    return save_png(fig, path) if fig is not None else None


def efficiency_figure(runs: Sequence[Run], varying: Sequence[str]) -> Figure | None:
    """The evaluation's pruning and downsampling curves per setting (mean over seeds), the τ = 0 setting dashed
    black as the baseline, and the chance line; None when no run has them."""
    keys = [k for k in setting_keys(varying) if k != "topo.weight"]
    done = [r for r in runs if r.status == "finished" and r.efficiency]
    panels = [p for p in ("pruning", "downsampling") if any(p in r.efficiency for r in done)]
    if not panels:
        return None
    fig = Figure(figsize=(5.4 * len(panels) + 0.6, 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    settings = sorted({(_group_name(_setting(r, keys), keys), r.value("topo.weight") or 0.0) for r in done},
                      key=lambda s: (s[0], float(s[1])))
    for ax, panel in zip(axes, panels):
        for i, (name, tau) in enumerate(settings):
            members = [r for r in done if _group_name(_setting(r, keys), keys) == name
                       and (r.value("topo.weight") or 0.0) == tau and panel in r.efficiency]
            curves = [_curve(r.efficiency, panel) for r in members]
            if not curves or any(c[0] != curves[0][0] for c in curves):
                continue
            baseline = float(tau) == 0.0
            label = ("τ = 0 (baseline)" if baseline else f"τ = {float(tau):g}") + (f", {name}" if keys else "")
            ax.plot(curves[0][0], np.mean([c[1] for c in curves], axis=0), marker="o", markersize=4,
                    color="k" if baseline and not keys else f"C{i % 10}", linestyle="--" if baseline else "-",
                    linewidth=2.0 if baseline else 1.2, zorder=3 if baseline else 2,
                    label=label + f" (n={len(curves)})")
        chance = next((r.efficiency["chance"] for r in done if "chance" in r.efficiency), None)
        if chance:
            ax.axhline(chance["value"], color="0.4", linestyle=":", label=f"chance ({chance['what']})")
        metric = done[0].efficiency.get("metric", "task metric")
        ax.set_xlabel(PRUNING_AXIS if panel == "pruning" else DOWNSAMPLING_AXIS, fontsize="small")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs {'L1 pruning' if panel == 'pruning' else 'sheet downsampling'} (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", handlelength=3.0)
    return fig


def plot_efficiency(runs: Sequence[Run], varying: Sequence[str], path: Path) -> Path | None:
    """Write efficiency_figure as a PNG (None when no run has efficiency curves)."""
    fig = efficiency_figure(runs, varying)
    return save_png(fig, path) if fig is not None else None


def _setting(run: Run, keys: Sequence[str]) -> dict[str, Any]:
    """The run's values of the setting keys (as _group_name reads them)."""
    return {k: run.override(k) for k in keys}


def _curve(efficiency: dict[str, Any], panel: str) -> tuple[list[float], list[float]]:
    """(x, metric) of a run's pruning (sparsity) or downsampling (kept fraction) curve from its report.json."""
    if panel == "pruning":
        pairs = sorted((float(k), float(v)) for k, v in efficiency["pruning"].items())
        return [p[0] for p in pairs], [p[1] for p in pairs]
    rows = efficiency["downsampling"]["curve"]
    return [row["kept_fraction"] for row in rows], [row["metric"] for row in rows]
