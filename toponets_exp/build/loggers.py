"""The run's loggers: csv always, wandb with logger=wandb."""

from __future__ import annotations

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from toponets_exp.checks import choice, integer
from toponets_exp.loggers import WANDB_MODES


def check_loggers(cfg: DictConfig) -> None:
    """The logger settings that are read after a logger starts writing (its run files)."""
    if "wandb" in cfg.logger:
        choice("logger.wandb.mode", cfg.logger.wandb.mode, WANDB_MODES)
    if "sheet_images_every_n_val" in cfg.logger:
        integer("logger.sheet_images_every_n_val", cfg.logger.sheet_images_every_n_val, 0)


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
