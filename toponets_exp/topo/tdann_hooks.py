"""TDANN's spatial loss on blocks' outputs at TDANN positions, joined to the training backward as the other response
losses are (toponets_exp.topo.spatial_hooks): a forward hook on each block computes its loss and the loss's gradient
with respect to the output, and a tensor hook adds c · ∂L/∂output to the gradient arriving there, c = τ · m · the
layer's weight times the backward's own factors (AMP scale, 1 / accumulation). The layers' terms are summed, as
TDANN's combined loss does (`spatial_correlation_simclr_info_nce_loss.py`: loss += layer_weights[layer] · L)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn

from toponets_exp.topo.response_hooks import ResponseHooks, join_backward
from toponets_exp.topo.spatial_hooks import neighbourhood_seed
from toponets_exp.topo.tdann_loss import tdann_spatial_loss
from toponets_exp.topo.unit_positions import TDANNPositions


@dataclass
class TDANNLayer:
    """One block trained by TDANN's loss: its module, its units' positions and neighbourhoods, τ and its weight."""

    name: str
    module: nn.Module
    positions: TDANNPositions
    weight: float             # τ (topo.weight), the run's strength
    layer_weight: float       # TDANN's layer weight (0.25 in its configs)
    schedule: Any = None      # the callback's τ schedule applies
    loss: str = "tdann"
    _tensors: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """The layer's name in logs."""
        return self.name

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(coordinates float32, neighbourhood indices) on `device`, kept there."""
        if self._tensors.get("device") != device:
            self._tensors = {"device": device,
                             "coordinates": torch.as_tensor(self.positions.coordinates, dtype=torch.float32,
                                                            device=device),
                             "neighbourhoods": torch.as_tensor(self.positions.neighborhood_indices, device=device)}
        return self._tensors["coordinates"], self._tensors["neighbourhoods"]


def picks(layer: TDANNLayer, seed: int, step: int, batch_idx: int, index: int, count: int) -> torch.Tensor:
    """The `count` neighbourhoods (rows, with replacement) of `layer` for the training batch (step, batch_idx)."""
    generator = torch.Generator().manual_seed(neighbourhood_seed(seed, step, batch_idx, 1000 + index))
    return torch.randint(len(layer.positions.neighborhood_indices), (count,), generator=generator)


@dataclass
class TDANNSpatial(ResponseHooks):
    """TDANN's spatial correlation loss on the named blocks (toponets_exp.topo.tdann_loss)."""

    layers: list[TDANNLayer]
    title: ClassVar[str] = "TDANN's spatial loss"
    combined: ClassVar[str | None] = "sum of layer_weight x loss"
    neighborhoods_per_batch: int = 1
    use_old_version: bool = False
    seed: int = 0

    def share(self, strategy: Any) -> None:
        """Every rank trains on global rank 0's positions (each rank made them from the same seed, but its CPU maths
        may round otherwise, and a swap decided by a rounding would differ)."""
        shared = strategy.broadcast([layer.positions for layer in self.layers], src=0)
        for layer, positions in zip(self.layers, shared):
            layer.positions, layer._tensors = positions, {}

    def attach(self, step: int, batch_idx: int, coefficient: Callable[[TDANNLayer], float],
               backward_factor: Callable[[], float]) -> None:
        """Hook every block with a nonzero coefficient for this training batch; its loss joins the batch's backward."""
        self.detach()
        self.values = {}
        for index, layer in enumerate(self.layers):
            coef = coefficient(layer)
            if coef != 0.0:
                rows = picks(layer, self.seed, step, batch_idx, index, self.neighborhoods_per_batch)
                self._handles.append(layer.module.register_forward_hook(self._hook(layer, rows, coef,
                                                                                   backward_factor)))

    def _hook(self, layer: TDANNLayer, rows: torch.Tensor, coef: float,
              backward_factor: Callable[[], float]) -> Callable[..., None]:
        """The forward hook of one block: loss and ∂loss/∂output now, added to the output's gradient in backward."""
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            if not torch.is_grad_enabled() or not output.requires_grad:
                return
            coordinates, hoods = layer.tensors(output.device)
            loss = partial(tdann_spatial_loss, coordinates=coordinates, neighbourhoods=hoods[rows.to(output.device)],
                           use_old_version=self.use_old_version)
            with torch.autocast(output.device.type, enabled=False):
                self.values[layer.name] = join_backward(output, loss, coef, backward_factor)
        return hook


def tdann_layers(net: nn.Module, positions: Mapping[str, TDANNPositions], weight: float,
                 layer_weights: Mapping[str, float]) -> list[TDANNLayer]:
    """The blocks of `net` named by `layer_weights`, each with its positions."""
    modules = dict(net.named_modules())
    return [TDANNLayer(name, modules[name], positions[name], weight, float(w)) for name, w in layer_weights.items()]
