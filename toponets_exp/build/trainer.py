"""The lightning.Trainer of `trainer=` (and `hardware=`) with the run's callbacks and loggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig

from toponets_exp.checks import integer, is_int, is_number, must, number
from toponets_exp.errors import ConfigError
from toponets_exp.lit import ReleaseProcessGroup, ScheduleNotice, progress_callback
from toponets_exp.resume import RunState
from toponets_exp.resume.slurm import cluster_plugins
from toponets_exp.topo import TopoLayer, TopoLossCallback, TopoSheetImages

INTEGER_KEYS = {"max_epochs": -1, "min_epochs": 0, "max_steps": -1, "min_steps": 0, "num_nodes": 1,
                "check_val_every_n_epoch": 1, "log_every_n_steps": 1, "accumulate_grad_batches": 1,
                "num_sanity_val_steps": -1}  # each key's lowest value (-1: no limit, or all batches)


def check_trainer(cfg: DictConfig) -> None:
    """The integer keys of `trainer`, the validation interval and a gradient clip >= 0 (Lightning checks the rest
    when the trainer is built)."""
    for key, low in INTEGER_KEYS.items():
        integer(f"trainer.{key}", cfg.trainer.get(key), low, optional=True)
    interval = cfg.trainer.get("val_check_interval")
    if interval is not None:
        must("trainer.val_check_interval", interval, is_int(interval) and interval >= 1 or
             is_number(interval) and 0 < interval <= 1, "a number of batches >= 1 or a fraction of an epoch in (0, 1]")
    clip = cfg.trainer.get("gradient_clip_val")
    if clip is not None:
        number("trainer.gradient_clip_val", clip, 0.0)


def checkpoints(cfg: DictConfig, module: L.LightningModule, out: Path) -> tuple[ModelCheckpoint, RunState]:
    """The best checkpoints by the module's monitor metric, and the run state (last.ckpt)."""
    best = ModelCheckpoint(dirpath=out / "checkpoints", filename="best-epoch{epoch:03d}",
                           auto_insert_metric_name=False, monitor=module.monitor, mode=module.monitor_mode,
                           save_top_k=integer("checkpoint.save_top_k", cfg.checkpoint.save_top_k, -1),
                           save_last=False)
    every = integer("checkpoint.every_n_train_steps", cfg.checkpoint.every_n_train_steps, 0)
    return best, RunState(out / "checkpoints", every, out / "metrics.csv")


def sheet_images(cfg: DictConfig, layers: list[TopoLayer], loggers: list[Logger]) -> list[TopoSheetImages]:
    """The weight-sheet images for W&B, when a W&B logger is among `loggers`."""
    if not any(isinstance(lg, WandbLogger) for lg in loggers):
        return []
    return [TopoSheetImages(layers, cfg.logger.sheet_images_every_n_val)]


def build_trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Logger], out: Path) -> L.Trainer:
    """The lightning.Trainer of `trainer=`, with the run's callbacks, loggers and directory."""
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, default_root_dir=str(out),
                           plugins=cluster_plugins(), _convert_="all")
    except InstantiationException as err:  # Lightning's checks of its arguments
        cause = err.__cause__
        if isinstance(cause, (TypeError, ValueError, MisconfigurationException)):
            raise ConfigError(f"trainer: {cause}") from err
        raise


def run_callbacks(cfg: DictConfig, topo: TopoLossCallback, best: ModelCheckpoint, state: RunState,
                  images: list[TopoSheetImages]) -> list[Any]:
    """The run's callbacks, in the order Lightning calls them (the progress display where the trainer shows one)."""
    bar = [progress_callback()] if cfg.trainer.get("enable_progress_bar") in (True, None) else []
    return [topo, best, state, LearningRateMonitor("step"), ReleaseProcessGroup(), ScheduleNotice(), *images, *bar]
