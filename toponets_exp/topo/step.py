"""What a topographic loss must know of a training step: the strategy, the GradScaler and accumulation."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy, Strategy

from toponets_exp.errors import ConfigError


def check_exact_strategy(strategy: Strategy) -> None:
    """TopoLoss reads each layer's full weight on every rank: sharded-parameter strategies cannot compute it."""
    if isinstance(strategy, (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy)):
        raise ConfigError(f"trainer.strategy={type(strategy).__name__} shards the parameters, so TopoLoss (which needs "
                          "every topo layer's whole weight on each rank) would not be exact; use ddp (TopoLoss is "
                          "added after the gradient all-reduce) or a single device")


def scaler_skips_step(trainer: L.Trainer, optimizer: torch.optim.Optimizer) -> bool:
    """Whether the precision plugin's GradScaler found Inf/NaN in this step's unscaled gradients (it will skip it).

    The scaler unscales before on_before_optimizer_step; it records what it found per optimizer.
    """
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is None or not scaler.is_enabled():
        return False
    found = scaler._per_optimizer_states[id(optimizer)].get("found_inf_per_device", {})
    return any(bool(v.item()) for v in found.values())


def backward_factor(trainer: L.Trainer) -> float:
    """What the backward's loss is multiplied by: the GradScaler's scale (fp16) over accumulate_grad_batches."""
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    scale = float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0
    return scale / trainer.accumulate_grad_batches


def check_finite(what: str, total: torch.Tensor, per_layer: Mapping[str, torch.Tensor], step: int,
                 cause: str) -> None:
    """Stop training with the layers to blame when a topographic loss is not finite."""
    if not torch.isfinite(total):
        bad = [name for name, value in per_layer.items() if not torch.isfinite(value)]
        raise FloatingPointError(f"{what} is {float(total)} at optimizer step {step}: layer(s) {', '.join(bad)} "
                                 f"{cause}")
