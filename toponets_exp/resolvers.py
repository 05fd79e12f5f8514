"""OmegaConf resolvers the configs use (registered when the package is imported: before Hydra composes, and in
every submitit job, which imports it to run the task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


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


def register() -> None:
    """Register the project's resolvers (idempotent)."""
    for name, resolver in (("first_set", first_set), ("new_run_subdir", new_run_subdir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
