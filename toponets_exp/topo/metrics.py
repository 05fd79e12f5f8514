"""What the topo callback reports: each logged optimizer step's losses and τ multiplier, and each validation's
unweighted losses of the measured sheets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from toponets_exp.topo.layer import TopoLayer


def mean_topoloss(layers: Sequence[TopoLayer], per_layer: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The mean TopoLoss over the measured sheets (not the wiring costs); NaN if none is measured."""
    values = [per_layer[l.key] for l in layers if l.loss == "topoloss"]
    return torch.stack(values).mean() if values else torch.full((), float("nan"))


def step_metrics(total: torch.Tensor | None, per_layer: Mapping[str, torch.Tensor], spatial: torch.Tensor | None,
                 spatial_values: Mapping[str, torch.Tensor], multiplier: float) -> dict[str, float]:
    """An optimizer step's topo/<layer> and topo/total (weight losses), spatial/<layer> and spatial/total (the
    spatial correlation loss, if it ran) and topo/tau_multiplier."""
    metrics = {f"topo/{name}": float(v.detach()) for name, v in per_layer.items()}
    if total is not None:
        metrics["topo/total"] = float(total.detach())
    if spatial is not None:
        metrics.update({f"spatial/{name}": float(v) for name, v in spatial_values.items()})
        metrics["spatial/total"] = float(spatial)
    metrics["topo/tau_multiplier"] = multiplier
    return metrics


def layer_listing(layers: Sequence[Any]) -> str:
    """The trained layers for the log: name, sheet (or a block's output dims) and τ."""
    return ", ".join(f"{layer.key} {getattr(layer, 'sheet', None) or layer.positions.dims} τ={layer.weight:g}"
                     for layer in layers)


def response_values(losses: Sequence[Any]) -> dict[str, torch.Tensor]:
    """Each response loss's per-layer value in the last training batch."""
    return {name: value for loss in losses for name, value in loss.values.items()}


def validation_metrics(layers: Sequence[TopoLayer], per_layer: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A validation's val_topo/<layer> (each measured layer's unweighted loss) and val_topo/mean (`mean_topoloss`)."""
    values = {f"val_topo/{name}": value for name, value in per_layer.items()}
    values["val_topo/mean"] = mean_topoloss(layers, per_layer)
    return values
