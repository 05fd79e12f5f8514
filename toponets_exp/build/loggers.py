"""The run's loggers: csv always, wandb with logger=wandb."""

from __future__ import annotations

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """Every logger under `logger` (csv always; wandb with logger=wandb, given the resolved config as run config)."""
    loggers = []
    for key, node in cfg.logger.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            if key == "wandb":  # partial, so the run config's own _target_ entries are not instantiated
                make = instantiate(node, _convert_="all", _partial_=True)
                loggers.append(make(run_config=OmegaConf.to_container(cfg, resolve=True)))
            else:
                loggers.append(instantiate(node, _convert_="all"))
    return loggers
