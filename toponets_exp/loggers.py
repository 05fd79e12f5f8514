"""Loggers: a CSV logger that continues a resumed run's metrics.csv, W&B runs laid out as sweep dashboards, and an
evaluation's report logged to them."""

from __future__ import annotations

import csv
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.types import RunMode
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from toponets_exp.checks import choice
from toponets_exp.io import write_text
from toponets_exp.sweep import run_name, sweep_group, varying_keys

log = logging.getLogger(__name__)
WANDB_MODES = ("auto", "online", "offline")
RUN_ID_FILE = "wandb_run_id"


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, appending to an existing metrics.csv (with its columns) instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))


class ContinuingCSVLogger(CSVLogger):
    """CSVLogger whose metrics.csv survives a restart in the same directory (rows after the resumed checkpoint
    are removed beforehand by `toponets_exp.resume.prepare_run_dir`)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


def _hydra() -> Any | None:
    """Hydra's runtime config inside a Hydra app, else None."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def run_id(save_dir: str | Path) -> str | None:
    """The run directory's W&B run id, created once (by rank 0) and kept, so a resumed run continues it."""
    path = Path(save_dir) / RUN_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    if rank_zero_only.rank != 0:
        return None  # only rank 0 starts a W&B run
    new = secrets.token_hex(4)
    write_text(path, new + "\n")
    return new


def wandb_logger(project: str, save_dir: str, mode: str = "auto", entity: str | None = None,
                 group: str | None = None, tags: Sequence[str] = (), name: str | None = None,
                 run_config: Mapping[str, Any] | None = None) -> WandbLogger:
    """W&B logger: online when WANDB_API_KEY is set (mode=auto), else offline files under `save_dir`/wandb.

    In a multirun, `group` defaults to the sweep's name and `name` to the overrides that vary; the run id lives in
    the run directory, so a resumed or requeued run continues its W&B run.
    """
    choice("logger.wandb.mode", mode, WANDB_MODES)
    offline = mode == "offline" or (mode == "auto" and not os.environ.get("WANDB_API_KEY"))
    hydra = _hydra()
    if hydra is not None and hydra.mode == RunMode.MULTIRUN:
        group = group or sweep_group(hydra.sweep.dir)
        name = name or run_name(list(hydra.overrides.task), varying_keys(hydra.sweep.dir))
    os.makedirs(save_dir, exist_ok=True)
    logger = WandbLogger(project=project, save_dir=save_dir, offline=offline, entity=entity, group=group,
                         tags=list(tags), name=name, id=run_id(save_dir), resume="allow",
                         config=dict(run_config or {}))
    # Lightning always passes wandb.init an `anonymous` value (None here), which wandb >= 0.22 warns is ignored
    logger._wandb_init.pop("anonymous", None)
    log.info("W&B %s run files under %s", "offline" if offline else "online", os.path.join(save_dir, "wandb"))
    return logger


def finish_wandb(loggers: Sequence[Any], summary: Mapping[str, Any] | None = None) -> None:
    """Write `summary` into each W&B run's summary and finish the run (so the next job of a multirun starts clean)."""
    for lg in loggers:
        if isinstance(lg, WandbLogger) and lg._experiment is not None:
            if summary:
                lg.experiment.summary.update(dict(summary))
            lg.experiment.finish()


def log_report(loggers: Sequence[Any], report: Mapping[str, Any], run_dir: Path) -> None:
    """An evaluation's report to the W&B runs among `loggers`: its numbers (aggregates and per-layer) and every
    figure it lists (paths relative to `run_dir`)."""
    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not wandb_loggers:
        return
    scalars = {f"eval/{k}": v for k, v in report["aggregate"].items() if isinstance(v, (int, float))}
    for name, entry in report["layers"].items():
        scalars.update({f"eval/{name}/{k}": v for k, v in entry.items() if isinstance(v, (int, float))})
    for lg in wandb_loggers:
        lg.log_metrics(scalars)
        for figure in report["figures"]:
            lg.log_image(key=f"eval/{Path(figure).stem}", images=[str(run_dir / figure)])
