"""The wiring cost of a layer's weights: Σ |w_ij| · d_ij between units placed on sheets (Blauch et al. 2022's ITN,
Achterberg et al. 2023's spatially embedded RNNs), for a layer whose inputs are the previous selected layer's units.

Placement: an H×W sheet is laid over the unit square, unit i at the centre of its cell, ((row + ½) / H,
(column + ½) / W). Layer l's output units sit on its own sheet; its input channels are layer l − 1's output units,
at their places on layer l − 1's sheet, rescaled to the same square. d_ij is the Euclidean distance between output
unit i and input channel j. A conv weight (out, in, kh, kw) has one distance per (i, j), shared by its kernel taps.

The loss of a layer is its units' mean wiring length: Σ_ij |w_ij| d_ij over the layer's weights divided by its
number of units, as TopoLoss is a mean over units (so one τ acts with a similar strength per weight); its gradient
is sign(w) · d / units (0 at w = 0).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from toponets_exp.errors import ConfigError
from toponets_exp.topo.layer import TopoLayer


def cell_centres(sheet: tuple[int, int], dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """(units, 2) places of an H×W sheet's units in the unit square, row-major: the centres of its cells."""
    h, w = sheet
    rows = (torch.arange(h, dtype=torch.float64, device=device) + 0.5) / h
    cols = (torch.arange(w, dtype=torch.float64, device=device) + 0.5) / w
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2).to(dtype)


def wiring_distances(sheet: tuple[int, int], in_sheet: tuple[int, int], dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """(out units, in channels) distances between a layer's units and its inputs' places on the previous sheet."""
    return torch.cdist(cell_centres(sheet, torch.float64, device), cell_centres(in_sheet, torch.float64, device)
                       ).to(dtype)


def wiring_cost(units: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """Σ |w| · d over a (units, in channels · taps) matrix, divided by its units; d is (units, in channels)."""
    per_pair = units.reshape(*distances.shape, -1).abs().sum(dim=-1)  # a channel pair's taps share its distance
    return (per_pair * distances).sum() / units.shape[0]


def add_wiring_grad(out: torch.Tensor, units: torch.Tensor, distances: torch.Tensor, coef: float) -> torch.Tensor:
    """out += coef · ∂wiring_cost/∂units = coef · sign(w) · d / units, in place (out contiguous, shaped like units)."""
    pairs = (*distances.shape, -1)
    out.view(pairs).addcmul_(units.reshape(pairs).sign(), distances[:, :, None], value=coef / units.shape[0])
    return out


def in_channels(layer: TopoLayer) -> int:
    """How many input channels the layer's units read (the fan-in axis of its weight, kernel taps aside)."""
    return layer.param.shape[1 - layer.unit_dim]


def wire_layers(layers: list[TopoLayer]) -> list[TopoLayer]:
    """Place each wiring layer's inputs on the previous wiring layer's sheet (its `in_sheet`); the first one only
    places the second's inputs (it keeps no `in_sheet`: it has no wiring cost, and is measured and mapped only).

    The wiring layers, in selection order, must each read the previous one's units (input channels = its units).
    """
    wiring = [layer for layer in layers if layer.loss == "wiring"]
    if not wiring:
        return layers
    if len(wiring) < 2:
        raise ConfigError(f"loss=wiring selects only {wiring[0].name!r}; the wiring cost needs consecutive layers "
                          "(the first places the inputs of the second on its sheet)")
    placed = {}
    for previous, layer in zip(wiring, wiring[1:]):
        units, channels = previous.sheet[0] * previous.sheet[1], in_channels(layer)
        if channels != units:
            raise ConfigError(f"loss=wiring: {layer.name!r} reads {channels} input channels, but the layer selected "
                              f"before it, {previous.name!r}, has {units} units; select consecutive layers")
        placed[id(layer)] = replace(layer, in_sheet=previous.sheet)
    return [placed.get(id(layer), layer) for layer in layers]


def has_wiring_cost(layer: TopoLayer) -> bool:
    """Whether the layer has a wiring cost: a wiring layer whose inputs are placed (not the first one)."""
    return layer.loss == "wiring" and layer.in_sheet is not None
