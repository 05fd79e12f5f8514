"""Sweep figures: task metric vs topography with the Pareto front, and every metric vs τ."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from toponets_exp.brain.plots import save_png
from toponets_exp.report.table import METRICS, pareto_front, setting_keys

LABELS = {"test_acc": "test accuracy", "test_ppl": "test perplexity", "test_loss": "test loss",
          "topo_loss": "TopoLoss (unweighted mean)", "weight_smoothness": "weight smoothness",
          "response_smoothness": "response smoothness", "effective_dim": "effective dimensionality",
          "tdann_smoothness": "TDANN smoothness of the selectivity maps"}


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


def plot_metrics_vs_tau(table: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]], varying: Sequence[str],
                        path: Path) -> Path | None:
    """One panel per metric: mean ± sd over seeds per setting (lines) and each run (dots), τ on a symlog axis."""
    done = [r for r in table if r["status"] == "finished" and r["tau"] is not None]
    metrics = [m for m in LABELS if any(r[m] is not None for r in done)]
    if not done or not metrics:
        return None
    keys = [k for k in setting_keys(varying) if k != "topo.weight"]
    columns = min(len(metrics), 3)
    rows_ = -(-len(metrics) // columns)
    fig = Figure(figsize=(4.2 * columns, 3.4 * rows_), layout="constrained")
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
        ax.set_xscale("symlog", linthresh=0.5)
        ax.set_xticks(taus, [f"{t:g}" for t in taus])
        ax.minorticks_off()
        ax.set_xlabel("τ (topo.weight)")
        ax.set_title(LABELS[metric])
        ax.grid(alpha=0.3)
    if len(names) > 1:
        axes[0].legend(fontsize="small")
    return save_png(fig, path)
