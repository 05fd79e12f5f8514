"""Logger factories that need a decision at run time."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from lightning.pytorch.loggers import WandbLogger

from toponets_exp.errors import ConfigError

log = logging.getLogger(__name__)
WANDB_MODES = ("auto", "online", "offline")


def wandb_logger(project: str, save_dir: str, mode: str = "auto", entity: str | None = None,
                 group: str | None = None, tags: Sequence[str] = (), name: str | None = None) -> WandbLogger:
    """W&B logger: online when WANDB_API_KEY is set (mode=auto), else offline files under `save_dir`/wandb."""
    if mode not in WANDB_MODES:
        raise ConfigError(f"logger.wandb.mode={mode!r} is not supported; use one of {', '.join(WANDB_MODES)}")
    offline = mode == "offline" or (mode == "auto" and not os.environ.get("WANDB_API_KEY"))
    os.makedirs(save_dir, exist_ok=True)
    logger = WandbLogger(project=project, save_dir=save_dir, offline=offline, entity=entity, group=group,
                         tags=list(tags), name=name)
    log.info("W&B %s run files under %s", "offline" if offline else "online", os.path.join(save_dir, "wandb"))
    return logger
