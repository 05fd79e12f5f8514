"""OmegaConf resolvers the configs use (registered once, before Hydra composes)."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def first_set(value: Any, default: Any) -> Any:
    """`value` unless it is null or empty, else `default` (e.g. the run dir of `resume=`, else a new one)."""
    return default if value in (None, "") else value


def register() -> None:
    """Register the project's resolvers (idempotent)."""
    if not OmegaConf.has_resolver("first_set"):
        OmegaConf.register_new_resolver("first_set", first_set)
