"""Optimizer and LR schedule from the plain `optim.*` config keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

from toponets_exp.errors import ConfigError

OPTIMIZERS = ("sgd", "adamw")
LR_SCHEDULES = ("cosine", "constant")


def check_optim(optim: Mapping[str, Any], max_epochs: Any = None, max_steps: Any = None) -> None:
    """The optimizer and LR schedule names, and a horizon for a schedule that needs one, checked before anything
    runs (`max_epochs`, `max_steps`: the trainer's stop criteria; -1 and -1 is Lightning's "train forever")."""
    name = str(optim.get("name", "sgd")).lower()
    if name not in OPTIMIZERS:
        raise ConfigError(f"optim.name={name!r} is not supported; use one of {', '.join(OPTIMIZERS)}")
    kind = str(optim.get("lr_schedule", "cosine"))
    if kind not in LR_SCHEDULES:
        raise ConfigError(f"optim.lr_schedule={kind!r} is not supported; use one of {', '.join(LR_SCHEDULES)}")
    if kind == "cosine" and max_epochs == -1 and max_steps in (-1, None):
        raise ConfigError("trainer.max_epochs=-1 (no end) leaves optim.lr_schedule=cosine without a horizon: set "
                          "trainer.max_steps or a trainer.max_epochs, or use optim.lr_schedule=constant")


def param_groups(module: nn.Module, weight_decay: float, no_decay_1d: bool) -> list[dict[str, Any]]:
    """Parameter groups; with `no_decay_1d`, biases and norm/embedding-free 1-D params get no weight decay."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not no_decay_1d:
        return [{"params": params, "weight_decay": weight_decay}]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(groups: Iterable[dict[str, Any]], optim: Mapping[str, Any]) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov) or AdamW (betas) over the given groups."""
    name = str(optim.get("name", "sgd")).lower()
    if name == "sgd":
        return torch.optim.SGD(groups, lr=optim["lr"], momentum=optim.get("momentum", 0.9),
                               nesterov=optim.get("nesterov", False))
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=optim["lr"], betas=tuple(optim.get("betas", (0.9, 0.999))),
                                 eps=optim.get("eps", 1e-8))
    raise ConfigError(f"optim.name={name!r} is not supported; use one of {', '.join(OPTIMIZERS)}")


def build_lr_schedule(optimizer: torch.optim.Optimizer, optim: Mapping[str, Any],
                      total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `optim.warmup_steps`, then cosine to `optim.min_lr_ratio` or constant; stepped per step.

    transformers' schedules: the warm-up factor is step / warmup_steps (0 at the first step), the cosine runs from
    step warmup_steps to `total_steps` (at least warmup_steps + 1) and ends at the floor.
    """
    kind = str(optim.get("lr_schedule", "cosine"))
    if kind not in LR_SCHEDULES:
        raise ConfigError(f"optim.lr_schedule={kind!r} is not supported; use one of {', '.join(LR_SCHEDULES)}")
    warmup = int(optim.get("warmup_steps", 0))
    if kind == "constant":
        return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
    return get_cosine_with_min_lr_schedule_with_warmup(optimizer, num_warmup_steps=warmup,
                                                       num_training_steps=max(int(total_steps), warmup + 1),
                                                       min_lr_rate=float(optim.get("min_lr_ratio", 0.0)))


def optimizer_config(net: nn.Module, optim: Mapping[str, Any], total_steps: int,
                     no_decay_1d: bool) -> dict[str, Any]:
    """Lightning's configure_optimizers result: optimizer over `net`'s groups and the LR schedule stepped per step.

    `no_decay_1d` is the default for `optim.no_decay_1d` when the config does not set it.
    """
    groups = param_groups(net, float(optim.get("weight_decay", 0.0)), bool(optim.get("no_decay_1d", no_decay_1d)))
    optimizer = build_optimizer(groups, optim)
    schedule = build_lr_schedule(optimizer, optim, total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
