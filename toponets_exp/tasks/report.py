"""task=report: a sweep's table (report.csv, report.md) and figures, from its run directories, and a comparison of
evaluated models (comparison.csv, comparison.md, figures/comparison.png), from their task=eval directories; never
trains."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from toponets_exp.errors import ConfigError
from toponets_exp.io import write_csv, write_text
from toponets_exp.loggers import finish_wandb
from toponets_exp.sweep_report import (Run, aggregate, collect, comparison_markdown, comparison_rows, markdown,
                                       plot_comparison, plot_efficiency, plot_metrics_vs_tau, plot_pareto, rows,
                                       task_metric)
from toponets_exp.sweep_report.runs import STATUSES
from toponets_exp.sweep_report.search import front_markdown, is_search, plot_front, trial_rows
from toponets_exp.sweep import sweep_group
from toponets_exp.build import output_dir

log = logging.getLogger(__name__)


def _dirs(cfg: DictConfig, key: str) -> list[str]:
    """report.<key>: one directory or a list of them (none: an empty list)."""
    given = cfg.report.get(key)
    if isinstance(given, (list, ListConfig)):
        return [str(d) for d in given]
    if given is not None and not isinstance(given, str):
        raise ConfigError(f"report.{key}={given!r}: expected a directory or a list of them ([dir1,dir2])")
    return [given] if given else []


def _to_wandb(cfg: DictConfig, group: str | None, tables: dict[str, list[dict[str, Any]]],
              figures: list[Path]) -> None:
    """With logger=wandb: the tables (by key) and figures as one W&B run named report, in `group` unless
    logger.wandb.group names one."""
    node = cfg.logger.get("wandb")
    if node is None:
        return
    make = instantiate(node, _convert_="all", _partial_=True)
    logger = make(group=node.group or group, name="report", run_config=OmegaConf.to_container(cfg, resolve=True))
    for key, table in tables.items():
        columns = list(table[0])
        logger.log_table(key=key, columns=columns, data=[[row[c] for c in columns] for row in table])
    for png in figures:
        logger.log_image(key=f"report/{png.stem}", images=[str(png)])
    finish_wandb([logger])


def _statuses(table: list[dict[str, Any]]) -> dict[str, int]:
    """How many runs of the sweep table have each status."""
    return {s: sum(r["status"] == s for r in table) for s in STATUSES}


def _sweep_report(dirs: list[str], runs: list[Run], varying: list[str],
                  out: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    """report.csv, report.md and the sweep figures in `out`; the table and the figures written."""
    table = rows(runs, varying)
    groups = aggregate(table, varying)
    write_csv(out / "report.csv", list(table[0]), table)
    title = "Sweep report: " + ", ".join(dirs)
    write_text(out / "report.md", markdown(table, groups, varying, title))
    metric = task_metric(table)
    figures = [p for p in (plot_pareto(table, metric, out / "figures" / "pareto.png"),
                           plot_metrics_vs_tau(table, groups, varying, out / "figures" / "metrics_vs_tau.png"),
                           plot_efficiency(runs, varying, out / "figures" / "efficiency.png")) if p]
    statuses = _statuses(table)
    for row in table:
        if row["status"] != "finished":
            log.warning("job %s of %s is %s (%s)", row["job"], row["sweep"], row["status"], row["run_dir"])
    log.info("Report of %d runs (%s) varying %s: %s, %s, figures %s", len(table),
             ", ".join(f"{n} {s}" for s, n in statuses.items() if n), ", ".join(varying) or "nothing",
             out / "report.md", out / "report.csv", ", ".join(str(p) for p in figures))
    return table, figures


def _search_front(sweep_dir: Path, out: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    """A search's trials (front_<name>.csv), its front (front_<name>.md) and objective-space figure."""
    trials, names, directions = trial_rows(sweep_dir)
    write_csv(out / f"front_{sweep_dir.name}.csv", list(trials[0]) if trials else ["trial"], trials)
    write_text(out / f"front_{sweep_dir.name}.md", front_markdown(trials, names, directions,
                                                                  f"Search {sweep_dir}: the Pareto front"))
    figure = plot_front(trials, names, directions, out / "figures" / f"front_{sweep_dir.name}.png")
    log.info("Search %s: %d trials, %d on the front: %s", sweep_dir, len(trials), sum(t["front"] for t in trials),
             out / f"front_{sweep_dir.name}.md")
    return trials, [figure] if figure else []


def _comparison_report(table: list[dict[str, Any]], out: Path) -> list[Path]:
    """comparison.csv, comparison.md and figures/comparison.png in `out`; the figures written."""
    write_csv(out / "comparison.csv", list(table[0]), table)
    write_text(out / "comparison.md", comparison_markdown(table))
    figures = [p for p in (plot_comparison(table, out / "figures" / "comparison.png"),) if p]
    drawn = sum(r["accuracy"] is not None for r in table)
    log.info("Comparison of %d models (%d with an accuracy, drawn): %s, %s, figures %s", len(table), drawn,
             out / "comparison.md", out / "comparison.csv", ", ".join(str(p) for p in figures) or "none")
    return figures


def report(cfg: DictConfig) -> dict[str, Any]:
    """Tabulate the runs of report.sweep_dir (report.csv, report.md, figures/) and compare the evaluated models of
    report.eval_dirs (comparison.csv, comparison.md, figures/comparison.png) in this run's directory; every
    directory is read before anything is written."""
    sweep_dirs, eval_dirs = _dirs(cfg, "sweep_dir"), _dirs(cfg, "eval_dirs")
    if not sweep_dirs and not eval_dirs:
        raise ConfigError(f"report.sweep_dir={cfg.report.get('sweep_dir')!r}, "
                          f"report.eval_dirs={cfg.report.get('eval_dirs')!r}: task=report needs a multirun "
                          "directory, or a list of them (report.sweep_dir=[dir1,dir2]), or task=eval output "
                          "directories to compare (report.eval_dirs=[dirA,dirB]), or both")
    runs, varying = collect(sweep_dirs) if sweep_dirs else ([], [])
    models = comparison_rows(eval_dirs)
    out = output_dir(cfg)
    result: dict[str, Any] = {"task": "report"}
    tables: dict[str, list[dict[str, Any]]] = {}
    figures: list[Path] = []
    if sweep_dirs:
        tables["report"], figures = _sweep_report(sweep_dirs, runs, varying, out)
        result.update({"runs": len(runs), "varying": varying, "report": str(out / "report.md"),
                       "statuses": _statuses(tables["report"])})
    for sweep_dir in (Path(d) for d in sweep_dirs if is_search(Path(d))):
        tables[f"front_{sweep_dir.name}"], drawn = _search_front(sweep_dir, out)
        figures += drawn
        result.setdefault("fronts", []).append(str(out / f"front_{sweep_dir.name}.md"))
    if models:
        tables["comparison"] = models
        figures += _comparison_report(models, out)
        result.update({"models": len(models), "comparison": str(out / "comparison.md")})
    _to_wandb(cfg, sweep_group(sweep_dirs[0]) if sweep_dirs else None, tables, figures)
    return result


class ReportAtEnd(Callback):
    """Hydra callback: when a multirun ends, write its report (as task=report would) to <sweep dir>/report."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = str(config.hydra.sweep.dir)
        report(OmegaConf.create({"report": {"sweep_dir": sweep_dir}, "logger": {},
                                 "paths": {"output_dir": str(Path(sweep_dir) / "report")}}))
