"""TopoLossCallback: the one place TopoLoss touches training."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy, Strategy
from torch import nn

from toponets_exp.errors import ConfigError
from toponets_exp.topo.loss import TopoLoss
from toponets_exp.topo.schedule import Constant, Schedule
from toponets_exp.topo.selection import as_number, select_layers

log = logging.getLogger(__name__)


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


class TopoLossCallback(Callback):
    """Adds τ·∂TopoLoss/∂W to the gradients once per optimizer step.

    The hook runs after backward (so after the DDP all-reduce and gradient accumulation), after AMP unscaling and
    before gradient clipping, so training minimises `task_loss + TopoLoss` exactly. The topo term is computed in
    float32 on the float32 master weights with autocast off.
    """

    def __init__(
        self,
        layers: Sequence[Any],
        weight: float = 1.0,
        factor: Any = 3.0,
        reduction: str = "mean",
        schedule: Schedule | None = None,
        log_every_n_steps: int = 50,
        module_attr: str = "net",
    ) -> None:
        super().__init__()
        self.weight = as_number("topo.weight", weight, 0.0)
        if reduction not in ("mean", "sum"):
            raise ConfigError(f"topo.reduction={reduction!r} is not supported; use 'mean' or 'sum'")
        self.log_every_n_steps = int(as_number("topo.log_every_n_steps", log_every_n_steps, 1.0))
        self.layer_cfg, self.factor, self.reduction = list(layers), factor, reduction
        self.schedule = schedule if schedule is not None else Constant()
        self.module_attr = module_attr
        self.loss: TopoLoss | None = None

    @property
    def state_key(self) -> str:
        return "TopoLossCallback"

    def bind(self, net: nn.Module) -> TopoLoss:
        """Select and validate the topo layers of `net` (raises ConfigError on a bad selection).

        Frozen layers (requires_grad=False) are left out, with one warning naming them: they get no gradient and
        do not count in the mean.
        """
        layers = select_layers(net, self.layer_cfg, self.factor, self.weight)
        frozen = [layer.name for layer in layers if not layer.param.requires_grad]
        if frozen:
            if len(frozen) == len(layers):
                raise ConfigError(f"topo.layers selects only frozen layers (requires_grad=False): {', '.join(frozen)}")
            log.warning("TopoLoss skips %d frozen layer(s) (requires_grad=False), left out of its mean: %s",
                        len(frozen), ", ".join(frozen))
        self.loss = TopoLoss([layer for layer in layers if layer.param.requires_grad], self.reduction)
        return self.loss

    @property
    def active(self) -> bool:
        """Whether any selected layer has τ > 0 (if not, training does no topo compute at all)."""
        return self.loss is not None and any(layer.weight > 0 for layer in self.loss.layers)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        net = getattr(pl_module, self.module_attr, None)
        if not isinstance(net, nn.Module):
            raise ConfigError(f"the LightningModule has no backbone attribute {self.module_attr!r} for TopoLoss")
        self.bind(net)
        if stage != "fit":
            return
        check_exact_strategy(trainer.strategy)
        layers = ", ".join(f"{l.name} {l.sheet[0]}x{l.sheet[1]} φ=({l.factor_h:g},{l.factor_w:g}) τ={l.weight:g}"
                           for l in self.loss.layers)
        log.info("TopoLoss on %d layers (%s): %s", len(self.loss.layers), self.reduction, layers)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active and len(trainer.optimizers) != 1:
            raise ConfigError(f"TopoLoss expects one optimizer, the LightningModule has {len(trainer.optimizers)}")

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        if not self.active or scaler_skips_step(trainer, optimizer):
            return  # a step the fp16 GradScaler skips: no topo gradient, and the τ schedule does not advance
        scale = self.schedule.value
        self.schedule.step()
        if scale == 0.0:
            return
        with torch.no_grad(), torch.autocast(pl_module.device.type, enabled=False):
            total, per_layer = self.loss.accumulate_grad(scale, dtype=torch.float32)
        if not torch.isfinite(total):
            bad = [name for name, value in per_layer.items() if not torch.isfinite(value)]
            raise FloatingPointError(f"TopoLoss is {float(total)} at optimizer step {trainer.global_step}: layer(s) "
                                     f"{', '.join(bad)} have non-finite weights (NaN/Inf)")
        if trainer.global_step % self.log_every_n_steps == 0:
            self._log(trainer, total, per_layer, scale)

    def _log(self, trainer: L.Trainer, total: torch.Tensor, per_layer: dict[str, torch.Tensor], scale: float) -> None:
        """Write topo metrics straight to the loggers (every `log_every_n_steps` optimizer steps)."""
        metrics = {f"topo/{name}": float(v.detach()) for name, v in per_layer.items()}
        metrics["topo/total"] = float(total.detach())
        metrics["topo/tau_multiplier"] = scale
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the unweighted per-layer losses once per validation (τ=0 runs too; outside the training step)."""
        if self.loss is None or trainer.sanity_checking:
            return
        with torch.no_grad():
            per_layer = self.loss.layer_losses(dtype=torch.float32)
        for name, value in per_layer.items():
            pl_module.log(f"val_topo/{name}", value, on_epoch=True, sync_dist=False)
        pl_module.log("val_topo/mean", torch.stack(list(per_layer.values())).mean(), on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(), "weight": self.weight}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state_dict["schedule"])
