"""The sweep table: one row per run, means ± sd over seeds per setting, the accuracy-vs-smoothness Pareto front."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from toponets_exp.sweep_report.runs import STATUSES, Run

# Headline columns: name -> (where in summary.json, higher is better).
METRICS = {
    "test_acc": (("test", "acc"), True),
    "test_ppl": (("test", "ppl"), False),
    "test_loss": (("test", "loss"), False),
    "eval_acc": (("eval", "accuracy", "value"), True),  # report.json's: the classifier's, else the linear read-out's
    "topo_loss": (("topo", "mean_unweighted"), False),
    "weight_smoothness": (("eval", "weight_smoothness"), True),
    "response_smoothness": (("eval", "response_smoothness"), True),
    "effective_dim": (("eval", "effective_dimensionality"), False),
    "tdann_smoothness": (("eval", "tdann_smoothness"), True),  # TDANN smoothness of the selectivity maps, mean
    "morans_i_topolm": (("eval", "morans_i_topolm"), True),    # TopoLM's Moran's I of the selectivity maps, mean
    "topoformer_tgi": (("eval", "topoformer_tgi"), True),      # Topoformer's TGI of the topo layers, mean
    "orientation_selective": (("eval", "orientation_selective_fraction"), True),  # share of units, gratings
    "orientation_smoothness": (("eval", "orientation_tdann_smoothness"), True),   # TDANN, orientation maps
    "spatial_entropy": (("eval", "spatial_entropy"), False),   # All-TNN, orientation maps (nats; low: clustered)
    "cluster_radius": (("eval", "cluster_radius"), True),      # All-TNN, orientation maps (units)
    "radial_spectrum_slope": (("eval", "radial_spectrum_slope"), False),  # All-TNN, orientation maps, log-log
    "pinwheel_density": (("eval", "pinwheel_density"), False),  # TDANN's detector, pinwheels per column spacing²
    "patches": (("eval", "patches"), False),                    # TDANN's category patches per selectivity map
    "wall_time_s": (("wall_time_s",), False),
}


def _get(summary: dict[str, Any], where: tuple[str, ...]) -> float | None:
    node: Any = summary
    for key in where:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def rows(runs: Sequence[Run], varying: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per run: sweep, job, the varying overrides, model, τ, seed, headline metrics, status, directory."""
    out = []
    for run in runs:
        model = run.value("model.net._target_")
        row: dict[str, Any] = {"sweep": run.sweep.name, "job": run.num}
        row.update({key: run.override(key) for key in varying})
        row.update({"model": model.rsplit(".", 1)[-1] if isinstance(model, str) else None,
                    "tau": run.value("topo.weight"), "seed": run.value("seed")})
        row.update({name: _get(run.summary, where) for name, (where, _) in METRICS.items()})
        row.update({"status": run.status, "run_dir": str(run.path)})
        out.append(row)
    return out


def task_metric(table: Sequence[dict[str, Any]]) -> str:
    """The task metric the table has: test accuracy (classifiers), else test perplexity (language models), else the
    evaluation's accuracy (a trunk without a classifier: its linear read-out)."""
    for metric in ("test_acc", "test_ppl", "eval_acc"):
        if any(r[metric] is not None for r in table):
            return metric
    return "test_ppl"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Whether each (x, y) point is Pareto-optimal when both are maximised (no other point is ≥ in both, > in one)."""
    return [not any(ox >= x and oy >= y and (ox > x or oy > y) for ox, oy in points) for x, y in points]


def setting_keys(varying: Sequence[str]) -> list[str]:
    """The varying keys that define a setting: all but the seed (seeds are replicates)."""
    return [k for k in varying if k != "seed"]


def aggregate(table: Sequence[dict[str, Any]], varying: Sequence[str]) -> list[dict[str, Any]]:
    """Per setting (the varying overrides but the seed), over its finished runs: n, and mean and sd per metric."""
    keys = setting_keys(varying)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in table:
        if row["status"] == "finished":
            groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for setting, members in groups.items():
        entry: dict[str, Any] = dict(zip(keys, setting))
        entry["tau"] = members[0]["tau"]
        entry["n"] = len(members)
        for name in METRICS:
            values = [m[name] for m in members if m[name] is not None]
            entry[name] = float(np.mean(values)) if values else None
            entry[f"{name}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        out.append(entry)
    return sorted(out, key=lambda e: (tuple(str(e[k]) for k in keys if k != "topo.weight"), e["tau"] or 0.0))


def _cell(value: Any, sd: Any = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        text = f"{value:.4g}"
        return f"{text} ± {sd:.2g}" if sd is not None else text
    return str(value)


def markdown(table: Sequence[dict[str, Any]], groups: Sequence[dict[str, Any]], varying: Sequence[str],
             title: str) -> str:
    """report.md: the per-setting means (with n and sd) and every run with its status."""
    metrics = [m for m in METRICS if any(r[m] is not None for r in table)]
    lines = [f"# {title}", ""]
    counts = {s: sum(r["status"] == s for r in table) for s in STATUSES}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(table)} runs.")
    if groups:
        keys = setting_keys(varying)
        header = [*keys, "n", *metrics]
        lines += ["", "## Mean ± sd over seeds", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for g in groups:
            cells = [_cell(g[k]) for k in keys] + [str(g["n"])] + [_cell(g[m], g[f"{m}_sd"]) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
    header = ["sweep", "job", *varying, "model", *metrics, "status"]
    lines += ["", "## Runs", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table:
        lines.append("| " + " | ".join(_cell(r[k]) for k in header) + " |")
    return "\n".join(lines) + "\n"
