"""Optimizer and LR schedule: the config's partials (conf/optim/, conf/lr_schedule/) over a backbone's parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

from toponets_exp.checks import integer, is_number, must

OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]  # e.g. partial(torch.optim.AdamW, lr=...)
ScheduleFactory = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]  # (optimizer, steps)


def param_groups(module: nn.Module, no_decay_1d: bool) -> list[dict[str, Any]]:
    """The trainable parameters as optimizer groups; with `no_decay_1d`, biases and other 1-D parameters (norm
    weights) in a group of their own without weight decay (the others keep the optimizer's)."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not no_decay_1d:
        return [{"params": params}]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
                  min_lr_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_steps`, then a half cosine to `min_lr_ratio` × the peak at `total_steps`.

    transformers' schedule: the warm-up factor is step / warmup_steps (0 at the first step), the cosine runs from
    step warmup_steps to `total_steps` (at least warmup_steps + 1) and ends at the floor.
    """
    integer("lr_schedule.warmup_steps", warmup_steps, 0)
    must("lr_schedule.min_lr_ratio", min_lr_ratio, is_number(min_lr_ratio) and 0 <= float(min_lr_ratio) <= 1,
         "a number in [0, 1] (the floor as a fraction of the peak LR)")
    return get_cosine_with_min_lr_schedule_with_warmup(optimizer, num_warmup_steps=int(warmup_steps),
                                                       num_training_steps=max(int(total_steps), int(warmup_steps) + 1),
                                                       min_lr_rate=float(min_lr_ratio))


def warmup_constant(optimizer: torch.optim.Optimizer, total_steps: int,
                    warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_steps`, then the peak LR (`total_steps` is not needed)."""
    integer("lr_schedule.warmup_steps", warmup_steps, 0)
    return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=int(warmup_steps))


def optimizer_config(net: nn.Module, optimizer: OptimizerFactory, lr_schedule: ScheduleFactory | None,
                     total_steps: int, no_decay_1d: bool) -> dict[str, Any]:
    """Lightning's configure_optimizers result: the optimizer over `net`'s groups, and the LR schedule (if any)
    stepped every optimizer step."""
    built = optimizer(param_groups(net, no_decay_1d))
    if lr_schedule is None:
        return {"optimizer": built}
    return {"optimizer": built, "lr_scheduler": {"scheduler": lr_schedule(built, total_steps), "interval": "step"}}
