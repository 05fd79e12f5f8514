"""Models compared from their evaluation directories: one row per task=eval report.json, a table and the paper's
accuracy-against-topography figure (one point per model)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from toponets_exp.brain.plots import save_png
from toponets_exp.errors import ConfigError
from toponets_exp.sweep_report.figures import LABELS, y_range
from toponets_exp.sweep_report.table import METRICS

log = logging.getLogger(__name__)

# The report's aggregate measures, named as the sweep table names them: column -> key in report.json's aggregate.
MEASURES = {name: where[1] for name, (where, _) in METRICS.items() if where[0] == "eval"}
LANGUAGE = ("val_perplexity", "blimp_accuracy")  # language reports' own scores
NOT_TOPOGRAPHY = {"orientation_selective"}  # a share of selective units: a column, not a panel of the figure
POSITIONS = {"tdann": "TDANN", "topolm": "TopoLM"}
EXPECTED = "expected the output directory of a task=eval run (python run.py task=eval ...), holding its report.json"


def read_eval_report(directory: str) -> dict[str, Any]:
    """The task=eval report.json of `directory`; a ConfigError naming the directory when it is not one."""
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(f"report.eval_dirs: {directory!r} is not a directory; {EXPECTED}")
    if not (path / "report.json").is_file():
        raise ConfigError(f"report.eval_dirs: {directory!r} holds no report.json; {EXPECTED}")
    try:
        report = json.loads((path / "report.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"report.eval_dirs: {directory!r} has a report.json that is not JSON ({err}); "
                          f"{EXPECTED}") from err
    task = report.get("task") if isinstance(report, dict) else None
    if task != "eval":
        raise ConfigError(f"report.eval_dirs: the report.json of {directory!r} is not a task=eval report "
                          f"(task: {task!r}); {EXPECTED}")
    return report


def units(positions: dict[str, Any] | None) -> str:
    """Where the evaluation placed the units: the channel grid, or a peer's own positions with their length unit."""
    if not positions:
        return "channel grid"
    name = POSITIONS.get(positions.get("format"), str(positions.get("format")))
    return f"{name} positions ({positions.get('length_unit')})"


def row(report: dict[str, Any], directory: str) -> dict[str, Any]:
    """One model's row: its name, kind, units, accuracy and where it comes from, τ, the measures, what was left out."""
    accuracy = report.get("accuracy") or {}
    readout = report.get("readout") or {}
    aggregate = report.get("aggregate") or {}
    return {"label": report.get("label") or Path(directory).name, "kind": report.get("kind"),
            "units": units(report.get("positions")), "accuracy": accuracy.get("value"),
            "accuracy_source": accuracy.get("source"), "accuracy_what": accuracy.get("what"),
            "readout_accuracy": readout.get("accuracy"), "readout_test": readout.get("test"),
            "tau": report.get("topo_weight"), "val_perplexity": report.get("val_perplexity"),
            "blimp_accuracy": (report.get("blimp") or {}).get("accuracy"),
            **{name: aggregate.get(key) for name, key in MEASURES.items()},
            "left_out": ", ".join(aggregate.get("left_out_layers") or {}), "eval_dir": directory}


def comparison_rows(directories: Sequence[str]) -> list[dict[str, Any]]:
    """A row per evaluation directory, in the order given; a label already taken becomes `label (2)`, `label (3)`."""
    table = [row(read_eval_report(d), d) for d in directories]
    seen: dict[str, int] = {}
    for entry in table:
        name = entry["label"]
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            entry["label"] = f"{name} ({seen[name]})"
            log.info("Two evaluations are labelled %r: the one in %s is %r", name, entry["eval_dir"], entry["label"])
    return table


def cell(value: Any) -> str:
    """A Markdown cell: numbers to 3 significant digits, n/a for a missing value."""
    if value is None or value == "":
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def comparison_markdown(table: Sequence[dict[str, Any]]) -> str:
    """comparison.md: the models' table (language scores and measures no model has are dropped), then what each
    accuracy is and which measures each model left out as grid-only."""
    optional = [m for m in (*LANGUAGE, *MEASURES) if any(r[m] is not None for r in table)]
    header = ["label", "kind", "units", "accuracy", "accuracy_source", "readout_accuracy", "tau", *optional]
    lines = ["# Model comparison", "", f"{len(table)} models, from their evaluation directories.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(r[k]) for k in header) + " |" for r in table]
    lines.append("")
    for r in table:
        left_out = f"left out as grid-only: {r['left_out']}" if r["left_out"] else "no measure left out"
        lines.append(f"- {r['label']}: accuracy: {r['accuracy_what'] or 'not reported'}; {left_out} "
                     f"({r['eval_dir']})")
    return "\n".join(lines) + "\n"


def _legend(drawn: Sequence[dict[str, Any]]) -> list[Line2D]:
    """Legend entries: the marker says where the accuracy comes from, the filling where the units are."""
    handles = []
    if any(r["accuracy_source"] != "readout" for r in drawn):
        handles.append(Line2D([], [], marker="o", linestyle="none", color="0.3", label="classifier, task test split"))
    tests = sorted({r["readout_test"] for r in drawn if r["accuracy_source"] == "readout"}, key=str)
    if tests:
        handles.append(Line2D([], [], marker="^", linestyle="none", color="0.3",
                              label=f"linear read-out, {'/'.join(map(str, tests))} held-out stimuli"))
    if any(r["units"] == "channel grid" for r in drawn):
        handles.append(Line2D([], [], marker="s", linestyle="none", color="0.3", label="filled: channel grid"))
    if any(r["units"] != "channel grid" for r in drawn):
        handles.append(Line2D([], [], marker="s", linestyle="none", color="0.3", markerfacecolor="none",
                              label="hollow: the peer's own unit positions"))
    return handles


def _annotate(ax: Axes, x: float, y: float, label: str, xs: Sequence[float]) -> None:
    """The model's label beside its point, on the side facing the panel's middle (above a lone x value)."""
    lo, hi = min(xs), max(xs)
    if lo == hi:
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize="small")
        return
    right = x > (lo + hi) / 2
    ax.annotate(label, (x, y), textcoords="offset points", xytext=(-6 if right else 6, 4),
                ha="right" if right else "left", fontsize="small")


def comparison_figure(table: Sequence[dict[str, Any]]) -> Figure | None:
    """Accuracy against each topography measure a model has, one point per model (its label beside it); None when no
    model has both an accuracy and a measure."""
    drawn = [r for r in table if r["accuracy"] is not None]
    measures = [m for m in MEASURES if m not in NOT_TOPOGRAPHY and any(r[m] is not None for r in drawn)]
    if not measures:
        return None
    columns = min(len(measures), 3)
    rows_ = -(-len(measures) // columns)
    fig = Figure(figsize=(4.4 * columns, 3.6 * rows_ + 0.8), layout="constrained")
    axes = fig.subplots(rows_, columns, squeeze=False).ravel()
    for extra in axes[len(measures):]:
        extra.set_visible(False)
    colors = {r["label"]: f"C{i % 10}" for i, r in enumerate(drawn)}
    bottom, top = y_range([r["accuracy"] for r in drawn], "test_acc", None)
    pad = 0.1 * (top - bottom)  # room for the labels
    for ax, measure in zip(axes, measures):
        points = [r for r in drawn if r[measure] is not None]
        for r in points:
            color = colors[r["label"]]
            ax.plot(r[measure], r["accuracy"], linestyle="none", markersize=8, color=color,
                    marker="^" if r["accuracy_source"] == "readout" else "o",
                    markerfacecolor=color if r["units"] == "channel grid" else "none")
            _annotate(ax, r[measure], r["accuracy"], r["label"], [p[measure] for p in points])
        ax.set_ylim(bottom - pad, top + pad)
        ax.margins(x=0.2)
        ax.set_xlabel(LABELS.get(measure, measure), fontsize="small")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    missing = len(table) - len(drawn)
    fig.suptitle(f"Accuracy against topography, one point per model ({len(drawn)} models"
                 + (f"; {missing} without an accuracy left out)" if missing else ")"))
    fig.legend(handles=_legend(drawn), loc="outside lower center", ncols=2, fontsize="small")
    return fig


def plot_comparison(table: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Write comparison_figure as a PNG (None when there is nothing to draw)."""
    fig = comparison_figure(table)
    return save_png(fig, path) if fig is not None else None
