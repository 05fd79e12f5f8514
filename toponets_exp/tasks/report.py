"""task=report: a sweep's table (report.csv, report.md) and figures, from its run directories; never trains."""

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
from toponets_exp.sweep_report import (aggregate, collect, markdown, plot_efficiency, plot_metrics_vs_tau,
                                       plot_pareto, rows, task_metric)
from toponets_exp.sweep_report.runs import STATUSES
from toponets_exp.sweep import sweep_group
from toponets_exp.build import output_dir

log = logging.getLogger(__name__)


def _sweep_dirs(cfg: DictConfig) -> list[str]:
    """report.sweep_dir: one multirun directory or a list of them."""
    given = cfg.report.sweep_dir
    if isinstance(given, (list, ListConfig)) and given:
        return [str(d) for d in given]
    if isinstance(given, str) and given:
        return [given]
    raise ConfigError(f"report.sweep_dir={given!r}: task=report needs a multirun directory, or a list of them "
                      "(report.sweep_dir=[dir1,dir2])")


def _to_wandb(cfg: DictConfig, dirs: list[str], table: list[dict[str, Any]], figures: list[Path]) -> None:
    """With logger=wandb: the table and figures as one W&B run in the sweep's group."""
    node = cfg.logger.get("wandb")
    if node is None:
        return
    make = instantiate(node, _convert_="all", _partial_=True)
    logger = make(group=node.group or sweep_group(dirs[0]), name="report",
                  run_config=OmegaConf.to_container(cfg, resolve=True))
    columns = list(table[0])
    logger.log_table(key="report", columns=columns, data=[[row[c] for c in columns] for row in table])
    for png in figures:
        logger.log_image(key=f"report/{png.stem}", images=[str(png)])
    finish_wandb([logger])


def report(cfg: DictConfig) -> dict[str, Any]:
    """Collect the runs of report.sweep_dir; write report.csv, report.md and figures/ in this run's directory."""
    dirs = _sweep_dirs(cfg)
    runs, varying = collect(dirs)
    table = rows(runs, varying)
    groups = aggregate(table, varying)
    out = output_dir(cfg)
    write_csv(out / "report.csv", list(table[0]), table)
    title = "Sweep report: " + ", ".join(dirs)
    write_text(out / "report.md", markdown(table, groups, varying, title))
    metric = task_metric(table)
    figures = [p for p in (plot_pareto(table, metric, out / "figures" / "pareto.png"),
                           plot_metrics_vs_tau(table, groups, varying, out / "figures" / "metrics_vs_tau.png"),
                           plot_efficiency(runs, varying, out / "figures" / "efficiency.png")) if p]
    _to_wandb(cfg, dirs, table, figures)
    statuses = {s: sum(r["status"] == s for r in table) for s in STATUSES}
    for row in table:
        if row["status"] != "finished":
            log.warning("job %s of %s is %s (%s)", row["job"], row["sweep"], row["status"], row["run_dir"])
    log.info("Report of %d runs (%s) varying %s: %s, %s, figures %s", len(table),
             ", ".join(f"{n} {s}" for s, n in statuses.items() if n), ", ".join(varying) or "nothing",
             out / "report.md", out / "report.csv", ", ".join(str(p) for p in figures))
    return {"task": "report", "runs": len(table), "statuses": statuses, "varying": varying,
            "report": str(out / "report.md")}


class ReportAtEnd(Callback):
    """Hydra callback: when a multirun ends, write its report (as task=report would) to <sweep dir>/report."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = str(config.hydra.sweep.dir)
        report(OmegaConf.create({"report": {"sweep_dir": sweep_dir}, "logger": {},
                                 "paths": {"output_dir": str(Path(sweep_dir) / "report")}}))
