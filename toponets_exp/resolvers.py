"""OmegaConf resolvers the configs use (registered when the package is imported: before Hydra composes, and in
every submitit job, which imports it to run the task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import ListConfig, OmegaConf

from toponets_exp.errors import ConfigError


def first_set(value: Any, default: Any) -> Any:
    """`value` unless it is null or empty, else `default` (e.g. the run dir of `resume=`, else a new one)."""
    return default if value in (None, "") else value


HYDRA_FILES = {".hydra", "run.log"}  # what Hydra writes into a run directory when a run starts


def holds_more_than_hydra(directory: str | Path) -> bool:
    """Whether `directory` holds anything besides Hydra's own start-up files (a run, or files of the user's)."""
    path = Path(directory)
    return path.is_dir() and any(p.name not in HYDRA_FILES for p in path.iterdir())


def new_run_subdir(directory: str, subdir: str) -> str | None:
    """Hydra's `subdir` (.hydra/) for a directory that holds no run yet, else null: resuming a run, or a command
    refused in another run's directory, leaves that run's .hydra/ as it is."""
    return None if holds_more_than_hydra(directory) else subdir


def linear_lr(base: float, per: int, batch_size: int, devices: Any, num_nodes: int = 1, accumulate: int = 1) -> float:
    """Linear LR scaling (Goyal et al. 2017; VISSL's auto_lr_scaling, TDANN's SimCLR): `base` per `per` images of the
    global batch, batch_size x devices x num_nodes x accumulate; `devices` a count or a list of devices."""
    count = len(devices) if isinstance(devices, (list, tuple, ListConfig)) else devices
    factors = {"data.batch_size": batch_size, "trainer.devices": count, "trainer.num_nodes": num_nodes,
               "trainer.accumulate_grad_batches": accumulate}
    for key, value in factors.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key}={value!r}: optim.lr's linear scaling (linear_lr) needs it as a whole number "
                              ">= 1 (devices counted, not -1 or auto); set it, or set optim.lr to a number")
    return float(base) * batch_size * count * num_nodes * accumulate / per


def register() -> None:
    """Register the project's resolvers (idempotent)."""
    for name, resolver in (("first_set", first_set), ("new_run_subdir", new_run_subdir), ("linear_lr", linear_lr)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
