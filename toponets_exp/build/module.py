"""The backbone in its LightningModule, with the optimizer and LR schedule of `optim=` and `lr_schedule=`."""

from __future__ import annotations

import inspect
import logging
import pydoc
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from toponets_exp.errors import ConfigError

log = logging.getLogger(__name__)


def _check_arguments(key: str, node: DictConfig, target: Callable[..., Any]) -> None:
    """Every argument `key` sets is one its `_target_` takes: else one line naming those it does not take, how to
    drop them, and what it takes."""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # a callable without a readable signature: it checks its own arguments
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = [name for name in node if not str(name).startswith("_") and name not in parameters]
    if unknown:
        drop = " ".join(f"~{key}.{name}" for name in unknown)
        takes = ", ".join(name for name in parameters if name not in ("self", "params", "optimizer"))
        raise ConfigError(f"{key}._target_={node._target_} takes no {', '.join(unknown)}: drop it with {drop} "
                          f"(it takes {takes})")


def _factory(cfg: DictConfig, key: str) -> Any:
    """The partial of config group `key` (a `_target_` with `_partial_: true`), or a ConfigError naming it."""
    node = cfg[key]
    if not isinstance(node, DictConfig) or "_target_" not in node or not node.get("_partial_", False):
        raise ConfigError(f"{key} must name a callable with _target_ and _partial_: true (conf/{key}/*.yaml)")
    target = pydoc.locate(str(node._target_))  # Hydra's own lookup logs an error line of its own
    if not callable(target):
        raise ConfigError(f"{key}._target_={node._target_!r} cannot be built: it names no importable callable")
    _check_arguments(key, node, target)
    arguments = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if not k.startswith("_")}
    log.info("%s: %s(%s)", key, node._target_, ", ".join(f"{k}={v}" for k, v in arguments.items()))
    return instantiate(node, _convert_="all")


def build_optim(cfg: DictConfig) -> tuple[Callable[..., torch.optim.Optimizer], Callable[..., Any]]:
    """The optimizer and LR schedule partials of `optim` and `lr_schedule`, tried on one parameter so that a bad
    argument fails now, and a schedule that needs a horizon refused without one."""
    optimizer, lr_schedule = _factory(cfg, "optim"), _factory(cfg, "lr_schedule")
    probe = torch.nn.Parameter(torch.zeros(1))
    try:
        built = optimizer([{"params": [probe]}])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"optim ({cfg.optim._target_}): {err}") from None
    try:
        lr_schedule(built, 1)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"lr_schedule ({cfg.lr_schedule._target_}): {err}") from None
    max_epochs, max_steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps")
    if cfg.lr_schedule._target_.endswith(".warmup_cosine") and max_epochs == -1 and max_steps in (-1, None):
        raise ConfigError("trainer.max_epochs=-1 (no end) leaves lr_schedule=cosine without a horizon: set "
                          "trainer.max_steps or a trainer.max_epochs, or use lr_schedule=constant")
    return optimizer, lr_schedule


def build_module(cfg: DictConfig) -> L.LightningModule:
    """Backbone from `model.net` (channels_last with `hardware=` GPU settings), wrapped in the LightningModule of
    `model.lit` with the optimizer and LR schedule."""
    optimizer, lr_schedule = build_optim(cfg)
    net = instantiate(cfg.model.net, _convert_="all")
    if cfg.model.get("channels_last", False):
        net = net.to(memory_format=torch.channels_last)
    return instantiate(cfg.model.lit, net=net, optimizer=optimizer, lr_schedule=lr_schedule, _convert_="all")


def example_input(cfg: DictConfig, datamodule: L.LightningDataModule) -> torch.Tensor | None:
    """One input of the model's shape, for the model summary's FLOPs and layer sizes: an image of the data's size, or
    a context of tokens (model.eval.context); None when neither is known."""
    if hasattr(datamodule, "input_size"):
        return torch.zeros(1, 3, datamodule.input_size, datamodule.input_size)
    context = cfg.model.get("eval", {}).get("context")
    return torch.zeros(1, int(context), dtype=torch.long) if context else None
