"""task=report: read sweep directories, tabulate their runs, draw the sweep figures; compare evaluated models."""

from toponets_exp.sweep_report.comparison import comparison_markdown, comparison_rows, plot_comparison
from toponets_exp.sweep_report.figures import plot_efficiency, plot_metrics_vs_tau, plot_pareto
from toponets_exp.sweep_report.runs import Run, collect
from toponets_exp.sweep_report.table import aggregate, markdown, pareto_front, rows, task_metric

__all__ = ["Run", "aggregate", "collect", "comparison_markdown", "comparison_rows", "markdown",
           "pareto_front", "plot_comparison", "plot_efficiency", "plot_metrics_vs_tau", "plot_pareto", "rows",
           "task_metric"]
