"""Task dispatch: `task=train | eval | report | prepare`, with bad config turned into one clear message and exit
code 2."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from toponets_exp.console import quiet_third_party
from toponets_exp.errors import CheckpointError, ConfigError
from toponets_exp.resolvers import holds_more_than_hydra
from toponets_exp.resume.slurm import submitit_job

log = logging.getLogger(__name__)


def _tasks() -> dict[str, Callable[[DictConfig], dict[str, Any]]]:
    """The runnable tasks (imported lazily so `--help` and errors stay fast)."""
    from toponets_exp.tasks.eval import run_eval
    from toponets_exp.tasks.prepare import prepare
    from toponets_exp.tasks.report import report
    from toponets_exp.tasks.train import train

    return {"train": train, "eval": run_eval, "report": report, "prepare": prepare}


def config_error(err: BaseException) -> ConfigError | None:
    """The user-input error behind an exception, as a ConfigError, if any (Hydra wraps errors raised while
    instantiating): a ConfigError, or a CheckpointError (a checkpoint file the config names is missing, unreadable
    or does not fit the model). Any other exception is a bug and keeps its traceback."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        if isinstance(err, CheckpointError):
            return ConfigError(str(err))
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _single_run_dir() -> Path | None:
    """The run directory of a single (not multirun) Hydra run, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return None
    return Path(HydraConfig.get().runtime.output_dir)


def _leave_no_trace(out: Path, existed: bool) -> None:
    """After a configuration error: stop logging into the directory of another run (or the user's); remove the one
    this start made, unless something was trained there (checkpoints)."""
    if not existed and (out / "checkpoints").exists():
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == out:
            root.removeHandler(handler)
            handler.close()
    if not existed:
        shutil.rmtree(out, ignore_errors=True)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run `cfg.task`; a configuration error exits with status 2 and a one-line message, and a single run's
    directory is left as it was before the command (one it made is removed; another run's log is not written).

    Inside a submitit job the error is raised instead, naming the job and its log, so that the job records a
    result and the launching multirun reports the failure and exits non-zero.
    """
    quiet_third_party()
    out = _single_run_dir()
    existed = out is not None and holds_more_than_hydra(out)
    try:
        tasks = _tasks()
        if cfg.task not in tasks:
            raise ConfigError(f"task={cfg.task!r} is not a task; use one of {', '.join(tasks)}")
        return tasks[cfg.task](cfg)
    except Exception as err:  # noqa: BLE001 - only configuration errors are handled, the rest re-raised
        bad = config_error(err)
        job = submitit_job()
        if job is not None:
            log.error("Job %s failed: %s", job, bad or err)
            kind = ConfigError if bad is not None else RuntimeError
            raise kind(f"Slurm job {job} failed: {bad or err}") from err
        if bad is None:
            log.error("Run failed: %s: %s", type(err).__name__, err)
            raise
        if out is not None:
            _leave_no_trace(out, existed)
        log.error("Configuration error: %s", bad)
        sys.exit(2)
