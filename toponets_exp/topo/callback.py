"""TopoLossCallback: the one place topographic losses (on weights or on responses) touch training."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from toponets_exp.checks import boolean, choice, integer
from toponets_exp.errors import ConfigError
from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.metrics import (layer_listing, mean_topoloss, response_values, step_metrics,
                                      validation_metrics)
from toponets_exp.topo.overlap import ConcurrentTopoGrad
from toponets_exp.topo.positions import Placements, place
from toponets_exp.topo.schedule import Constant, Schedule
from toponets_exp.topo.selection import measured_sheets, trainable, weight_layers
from toponets_exp.topo.spatial_hooks import SpatialCorrelation
from toponets_exp.topo.tdann_hooks import TDANNLayer, TDANNSpatial
from toponets_exp.topo.step import backward_factor, check_exact_strategy, check_finite, scaler_skips_step
from toponets_exp.topo.topoloss import TopoLoss

log = logging.getLogger(__name__)


class TopoLossCallback(Callback):
    """Topographic losses in training: TopoLoss on weights and TDANN's spatial correlation loss on responses.

    The callback receives the selected layers (`select_layers`), each with its loss and τ. TopoLoss, and the wiring
    cost of layers with loss=wiring (toponets_exp.topo.wiring), act on the weights: τ·∂loss/∂W is added to the
    gradients once per optimizer step, after backward (so after the DDP all-reduce and gradient accumulation), after
    AMP unscaling and before gradient clipping, so training minimises `task_loss + τ·loss` exactly. It is computed
    in float32 on the float32 master weights with autocast off. With `overlap`, it is computed concurrently with the
    step's forward/backward (a side CUDA stream, or a CPU worker thread) and only added in the hook.

    Spatial correlation (layers with loss=spatial_correlation) and TDANN's loss on blocks at TDANN positions
    (`tdann`): forward hooks, during training batches only, join the loss of each layer's responses to the same
    backward (toponets_exp.topo.spatial_hooks, toponets_exp.topo.tdann_hooks).

    Every selected layer's unweighted TopoLoss is logged at each validation, whichever loss trains it; the trained
    losses every trainer.log_every_n_steps optimizer steps. Frozen layers (requires_grad=False) are left out of
    TopoLoss, with one warning naming them: they get no gradient and do not count in the mean.
    """

    def __init__(self, layers: Sequence[TopoLayer], reduction: str = "mean", schedule: Schedule | None = None,
                 overlap: bool = False, spatial: Mapping[str, Any] | None = None, seed: int = 0,
                 positions: str = "identity", swapopt: Mapping[str, Any] | None = None,
                 placement_safe_point: Callable[[], None] | None = None, tdann: TDANNSpatial | None = None) -> None:
        super().__init__()
        choice("topo.reduction", reduction, ("mean", "sum"))
        boolean("topo.overlap", overlap)
        self.reduction = reduction
        self.schedule = schedule if schedule is not None else Constant()
        seed = integer("seed", seed)
        selected = list(layers)
        weights = weight_layers(selected)
        responses = [layer for layer in selected if layer.loss == "spatial_correlation"]
        weights = trainable(weights, bool(responses or tdann))
        self.loss = TopoLoss(weights, reduction) if weights else None
        extra = measured_sheets(selected, {layer.key for layer in weights})
        self.measured = TopoLoss(weights + extra, reduction) if extra else self.loss
        self.spatial = SpatialCorrelation.from_config(responses, seed, spatial or {}) if responses else None
        self.tdann = tdann
        self.response_losses = [loss for loss in (self.spatial, tdann) if loss is not None]
        self.concurrent = ConcurrentTopoGrad(self.loss) if overlap and self.loss is not None else None
        self.placements = Placements.from_config(positions, swapopt or {}, seed, selected, placement_safe_point)

    @property
    def state_key(self) -> str:
        return "TopoLossCallback"

    @property
    def layers(self) -> list[TopoLayer]:
        """Every layer measured: the weight losses' trained ones, then the TopoLoss (τ 0) of the output sheets the
        other losses train (not frozen ones)."""
        return self.measured.layers if self.measured is not None else []

    @property
    def weight(self) -> float | None:
        """The τ the trained layers share, those at τ 0 aside (None where they differ): the run's τ in checkpoints."""
        taus = {layer.weight for layer in self._trained_layers()}
        return taus.pop() if len(taus) == 1 else (taus - {0.0}).pop() if len(taus - {0.0}) == 1 else None

    @property
    def schedules(self) -> list[Schedule]:
        """The callback's τ schedule and every layer's own one (each advanced once per optimizer step)."""
        own = [layer.schedule for layer in self._trained_layers() if layer.schedule is not None]
        return [self.schedule, *{id(s): s for s in own}.values()]

    def _trained_layers(self) -> list[TopoLayer]:
        """The layers either loss trains."""
        return (self.loss.layers if self.loss else []) + [layer for loss in self.response_losses
                                                          for layer in loss.layers]

    def _held_layers(self) -> list[TopoLayer]:
        """Every layer object the callback's losses hold (each once)."""
        held = self.layers + (self.spatial.layers if self.spatial else [])
        return list({id(layer): layer for layer in held}.values())

    def multiplier(self, layer: TopoLayer) -> float:
        """The current τ multiplier of `layer` (its own schedule, else the callback's)."""
        return (layer.schedule or self.schedule).value

    def _weight_scales(self) -> dict[str, float]:
        """TopoLoss's τ multiplier per layer now."""
        return {layer.key: self.multiplier(layer) for layer in self.loss.layers} if self.loss else {}

    def _spatial_coefficient(self, layer: TopoLayer | TDANNLayer) -> float:
        """m · τ of a spatial layer, over the layer count for the mean reduction; m · τ · its weight of a TDANN block
        (TDANN's weighted sum)."""
        if isinstance(layer, TDANNLayer):
            return self.multiplier(layer) * layer.weight * layer.layer_weight
        count = len(self.spatial.layers) if self.reduction == "mean" else 1
        return self.multiplier(layer) * layer.weight / count

    @property
    def active(self) -> bool:
        """Whether any trained layer has τ > 0 (if not, training does no topo compute at all)."""
        return any(layer.weight > 0 for layer in self._trained_layers())

    @property
    def _weights_active(self) -> bool:
        """Whether TopoLoss has a layer with τ > 0."""
        return self.loss is not None and any(layer.weight > 0 for layer in self.loss.layers)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        check_exact_strategy(trainer.strategy)
        for kind, layers, how in (("TopoLoss", self.loss.layers if self.loss else [], self.reduction),
                                  *((loss.title, loss.layers, loss.combined or self.reduction)
                                    for loss in self.response_losses)):
            if layers:
                log.info("%s on %d layers (%s): %s", kind, len(layers), how, layer_listing(layers))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active and len(trainer.optimizers) != 1:
            raise ConfigError(f"TopoLoss expects one optimizer, the LightningModule has {len(trainer.optimizers)}")
        if self.tdann is not None:
            self.tdann.share(trainer.strategy)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Place the units (once, before the first step); hook the spatial layers for this batch; with overlap, start
        the step's TopoLoss gradient (the weights are fixed from now to the optimizer step)."""
        if self.placements.pending:
            self.placements.make(pl_module, batch[0], self._held_layers(), trainer.strategy)
            place(self._held_layers(), self.placements.by_module)
        for loss in self.response_losses:
            loss.attach(trainer.global_step, batch_idx, self._spatial_coefficient, lambda: backward_factor(trainer))
        if self.concurrent is not None and self._weights_active and not self.concurrent.pending:
            scales = self._weight_scales()
            if any(scales.values()):
                self.concurrent.launch(scales)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        for loss in self.response_losses:
            loss.detach()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        if not self.active or scaler_skips_step(trainer, optimizer):
            return  # a step the fp16 GradScaler skips: no topo gradient (one in flight stays valid: the weights
            # do not change), and the τ schedules do not advance
        scales = self._weight_scales()
        terms = [term for loss in self.response_losses if (term := loss.total(self._spatial_coefficient)) is not None]
        spatial = torch.stack(terms).sum() if terms else None
        multiplier = self.schedule.value
        for schedule in self.schedules:
            schedule.step()
        total, per_layer = None, {}
        if self._weights_active and any(scales.values()):
            if self.concurrent is not None and self.concurrent.pending and self.concurrent.scale == scales:
                total, per_layer = self.concurrent.add_to_grads()
            else:  # synchronous (also if a schedule state loaded since the launch changed the multipliers)
                if self.concurrent is not None:
                    self.concurrent.discard()
                with torch.no_grad(), torch.autocast(pl_module.device.type, enabled=False):
                    total, per_layer = self.loss.accumulate_grad(scales, dtype=torch.float32)
            check_finite("TopoLoss", total, per_layer, trainer.global_step, "have non-finite weights (NaN/Inf)")
        if spatial is not None:
            check_finite("the spatial correlation loss", spatial, response_values(self.response_losses),
                         trainer.global_step, "have non-finite responses (NaN/Inf)")
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self._log(trainer, total, per_layer, spatial, multiplier)

    def close(self) -> None:
        """Wait for and drop a topo gradient still in flight, stop its worker, and remove any forward hooks."""
        if self.concurrent is not None:
            self.concurrent.close()
        for loss in self.response_losses:
            loss.detach()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.close()

    @torch.no_grad()
    def summary(self) -> dict[str, Any]:
        """Unweighted loss of every measured layer now, the weight losses' τ-weighted total, the mean TopoLoss of
        the measured sheets, and the reduction."""
        per_layer = self.measured.layer_losses(dtype=torch.float32) if self.measured is not None else {}
        total = self.loss.total(per_layer) if self.loss is not None else torch.zeros(())
        mean = mean_topoloss(self.layers, per_layer)
        return {"reduction": self.reduction, "total": float(total), "mean_unweighted": float(mean),
                "per_layer": {name: float(v) for name, v in per_layer.items()}}

    def _log(self, trainer: L.Trainer, total: torch.Tensor | None, per_layer: dict[str, torch.Tensor],
             spatial: torch.Tensor | None, multiplier: float) -> None:
        """Write topo metrics straight to the loggers (every trainer.log_every_n_steps optimizer steps)."""
        metrics = step_metrics(total, per_layer, spatial, response_values(self.response_losses), multiplier)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the unweighted per-layer losses once per validation (τ=0 runs too; outside the training step).

        Under DDP the weights, hence these values, are the same on every rank: they are synchronised with a max,
        which returns that value exactly (a mean over ranks could round it).
        """
        if self.measured is None or trainer.sanity_checking:
            return
        with torch.no_grad():
            per_layer = self.measured.layer_losses(dtype=torch.float32)
        for key, value in validation_metrics(self.layers, per_layer).items():
            pl_module.log(key, value, on_epoch=True, sync_dist=True, reduce_fx="max")

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(), "weight": self.weight,
                "layer_schedules": [s.state_dict() for s in self.schedules[1:]],
                "placements": self.placements.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.schedule.load_state_dict(state_dict["schedule"])
        self.placements.load_state_dict(state_dict.get("placements", {}))
        place(self._held_layers(), self.placements.by_module)
        own = self.schedules[1:]
        saved = state_dict.get("layer_schedules", [])
        if len(saved) != len(own):
            raise ValueError(f"checkpoint holds {len(saved)} per-layer τ schedule(s), the config has {len(own)}")
        for schedule, state in zip(own, saved):
            schedule.load_state_dict(state)

