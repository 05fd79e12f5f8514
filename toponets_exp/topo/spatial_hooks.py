"""Activation-space topographic losses joined to the training backward through gradient hooks on layer outputs.

During a training step, a forward hook on each selected layer computes the spatial correlation loss L of its
output (float32, autocast off, from the detached output) and ∂L/∂output, and registers a tensor hook on the output
that adds c · ∂L/∂output to the gradient arriving there in backward. c = m · τ / (layers, for the mean) times the
factors the backward's own loss carries: the AMP GradScaler's scale and 1 / accumulate_grad_batches. So one
backward computes the gradient of `task_loss + Σ τ L` exactly (the same total as adding the losses to the task
loss), under gradient accumulation, AMP and DDP (each rank's loss on its own batch; DDP's gradient mean). Memory:
each hooked layer keeps one float32 tensor of its output's size (∂L/∂output) until the batch's backward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from toponets_exp.checks import choice, number
from toponets_exp.errors import ConfigError
from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.module_types import output_unit_dim
from toponets_exp.topo.response_hooks import ResponseHooks, join_backward
from toponets_exp.topo.spatial_correlation import (CONV_MODES, DISTANCES, sample_neighbourhoods,
                                                   spatial_correlation_loss, unit_responses)


def neighbourhood_seed(seed: int, step: int, batch_idx: int, layer_index: int) -> int:
    """A 63-bit seed for one layer's neighbourhoods at one training batch (a function of the run's seed only)."""
    state = np.random.SeedSequence((seed, step, batch_idx, layer_index)).generate_state(2, np.uint32)
    return int(state.view(np.uint64)[0] >> 1)


def step_neighbourhoods(layer: TopoLayer, seed: int, step: int, batch_idx: int, layer_index: int, count: int,
                        radius: float) -> torch.Tensor:
    """The (count, k) neighbourhoods of `layer` for the training batch (step, batch_idx), on its device."""
    generator = torch.Generator().manual_seed(neighbourhood_seed(seed, step, batch_idx, layer_index))
    return sample_neighbourhoods(layer.sheet, count, radius, generator, layer.param.device)


def output_unit_axis(output: object, layer: TopoLayer) -> int:
    """The unit axis of a layer's output, checked against its sheet (ConfigError if it has none that fits)."""
    if not isinstance(output, torch.Tensor) or output.ndim < 2:
        raise ConfigError(f"topo.layers: {layer.name!r} returned {type(output).__name__}"
                          f"{tuple(output.shape) if isinstance(output, torch.Tensor) else ''}, which has no unit "
                          "axis for spatial_correlation")
    unit_dim = output_unit_dim(layer.module, layer.param)
    units = output.shape[unit_dim]
    if units != layer.sheet[0] * layer.sheet[1]:
        raise ConfigError(f"topo.layers: {layer.name!r} outputs {units} units on axis {unit_dim} of its "
                          f"{tuple(output.shape)} output, but its sheet has {layer.sheet[0]}x{layer.sheet[1]}; "
                          "spatial_correlation needs the layer's units on its output's channel or last axis")
    return unit_dim


def output_loss(output: torch.Tensor, layer: TopoLayer, neighbourhoods: torch.Tensor, responses: str,
                unit_dim: int | None = None, distance: str = "euclidean", scale: float = 0.5) -> torch.Tensor:
    """Spatial correlation loss of one layer's output (differentiable; float32 maths, autocast off), its units in
    sheet order; `unit_dim` if its output was checked already (output_unit_axis)."""
    unit_dim = output_unit_axis(output, layer) if unit_dim is None else unit_dim
    with torch.autocast(output.device.type, enabled=False):
        on_sheet = layer.on_sheet(unit_responses(output, unit_dim, responses), dim=1)
        return spatial_correlation_loss(on_sheet, layer.sheet, neighbourhoods, distance, scale)


SETTINGS = {"neighbourhoods", "radius", "responses", "distance", "scale"}


@dataclass
class SpatialCorrelation(ResponseHooks):
    """TDANN's spatial correlation loss on the selected layers' responses (toponets_exp.topo.spatial_correlation)."""

    layers: list[TopoLayer]
    title: ClassVar[str] = "spatial correlation loss"
    combined: ClassVar[str | None] = None  # the callback's reduction
    neighbourhoods: int = 20
    radius: float = 3.0
    responses: str = "locations"
    distance: str = "euclidean"
    scale: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        choice("topo.spatial.responses", self.responses, CONV_MODES)
        choice("topo.spatial.distance", self.distance, DISTANCES)
        self.scale = number("topo.spatial.scale", self.scale, 0.0)
        for index, layer in enumerate(self.layers):  # a radius or count that does not fit fails now
            try:
                step_neighbourhoods(layer, self.seed, 0, 0, index, self.neighbourhoods, self.radius)
            except ConfigError as err:
                raise ConfigError(f"topo.spatial (layer {layer.name!r}, sheet {layer.sheet[0]}x{layer.sheet[1]}): "
                                  f"{err}") from None

    @classmethod
    def from_config(cls, layers: list[TopoLayer], seed: int, spatial: Mapping[str, Any]) -> SpatialCorrelation:
        """The loss on `layers` with the `topo.spatial` settings (unknown keys are a ConfigError)."""
        unknown = sorted(set(spatial) - SETTINGS)
        if unknown:
            raise ConfigError(f"topo.spatial has unknown key(s) {', '.join(unknown)}; accepted: "
                              f"{', '.join(sorted(SETTINGS))}")
        return cls(layers, seed=seed, **spatial)

    def attach(self, step: int, batch_idx: int, coefficient: Callable[[TopoLayer], float],
               backward_factor: Callable[[], float]) -> None:
        """Hook every layer with τ·m ≠ 0 for this training batch; its loss joins the batch's backward."""
        self.detach()
        self.values = {}
        for index, layer in enumerate(self.layers):
            coef = coefficient(layer)
            if coef == 0.0:
                continue
            hoods = step_neighbourhoods(layer, self.seed, step, batch_idx, index, self.neighbourhoods, self.radius)
            self._handles.append(layer.module.register_forward_hook(self._hook(layer, hoods, coef, backward_factor)))

    def _hook(self, layer: TopoLayer, hoods: torch.Tensor, coef: float,
              backward_factor: Callable[[], float]) -> Callable[..., None]:
        """The forward hook of one layer: loss and ∂loss/∂output now, added to the output's gradient in backward."""
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            unit_dim = output_unit_axis(output, layer)  # a layer without a unit axis fails even without grad
            if not torch.is_grad_enabled() or not output.requires_grad:
                return  # no backward will run through this output
            loss = partial(output_loss, layer=layer, neighbourhoods=hoods, responses=self.responses,
                           unit_dim=unit_dim, distance=self.distance, scale=self.scale)
            self.values[layer.name] = join_backward(output, loss, coef, backward_factor)
        return hook
