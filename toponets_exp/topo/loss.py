"""TopoLoss: 1 - cosine(unit weights, blurred sheet of unit weights), per layer and over a model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from toponets_exp.topo.sheet import sheet_shape, unit_matrix


def check_factor(factor: float, side: int, axis: str, where: str = "") -> float:
    """Validate a down-sampling factor against the sheet side it acts on (1 <= factor <= side)."""
    factor = float(factor)
    if not 1.0 <= factor <= side:
        raise ValueError(
            f"factor_{axis}={factor:g} is outside [1, {side}] for the sheet side {axis}={side}{where}; "
            "the down-sampling factor must be at least 1 and at most the sheet side"
        )
    return factor


def blur_matrix(side: int, factor: float, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> torch.Tensor:
    """(side, side) matrix A with A @ x = bilinear up(down(x, scale_factor=1/factor), size=side) along one axis."""
    check_factor(factor, side, "axis")
    basis = torch.eye(side, dtype=torch.float64, device=device).unsqueeze(0)  # (1, channel=unit, length)
    down = F.interpolate(basis, scale_factor=1.0 / factor, mode="linear")
    up = F.interpolate(down, size=side, mode="linear")
    return up[0].T.contiguous().to(dtype)  # column j = blurred j-th basis vector


def blur_sheet(units: torch.Tensor, blur_h: torch.Tensor, blur_w: torch.Tensor) -> torch.Tensor:
    """Blur an (H·W, E) row-major sheet with per-axis matrices: (A_h ⊗ A_w) · units, without the Kronecker."""
    h, w = blur_h.shape[0], blur_w.shape[0]
    x = torch.matmul(blur_w, units.reshape(h, w, -1))  # along W, batched over rows
    x = torch.matmul(blur_h, x.reshape(h, -1))  # along H
    return x.reshape(h * w, -1)


def cosine_loss(units: torch.Tensor, blurred: torch.Tensor) -> torch.Tensor:
    """1 - mean over units of cosine(original, blurred)."""
    return 1.0 - F.cosine_similarity(units, blurred, dim=-1).mean()


def layer_loss(weight: torch.Tensor, factor_h: float, factor_w: float, unit_dim: int = 0) -> torch.Tensor:
    """Unweighted TopoLoss of one Linear (out, in) or Conv (out, in, kh, kw) weight; differentiable."""
    units = unit_matrix(weight, unit_dim)
    h, w = sheet_shape(units.shape[0])
    blur_h = blur_matrix(h, factor_h, units.dtype, units.device)
    blur_w = blur_matrix(w, factor_w, units.dtype, units.device)
    return cosine_loss(units, blur_sheet(units, blur_h, blur_w))


@dataclass
class TopoLayer:
    """One selected layer: which parameter, its sheet geometry, factors and strength τ."""

    name: str
    module: nn.Module
    param_name: str
    unit_dim: int
    factor_h: float
    factor_w: float
    weight: float
    sheet: tuple[int, int]

    @property
    def param(self) -> nn.Parameter:
        """The parameter whose units form the sheet (looked up live, so it follows device moves)."""
        return getattr(self.module, self.param_name)


class TopoLoss:
    """Model-level TopoLoss: reduction over layers of τ_l · loss_l, plus the unweighted per-layer values."""

    def __init__(self, layers: list[TopoLayer], reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction={reduction!r} is not supported; use 'mean' or 'sum'")
        self.layers = layers
        self.reduction = reduction
        self._matrices: dict[tuple, torch.Tensor] = {}

    def _blur(self, side: int, factor: float, like: torch.Tensor) -> torch.Tensor:
        """Cached blur matrix for this side, factor, dtype and device."""
        key = (side, factor, like.dtype, like.device)
        if key not in self._matrices:
            self._matrices[key] = blur_matrix(side, factor, like.dtype, like.device)
        return self._matrices[key]

    def layer_losses(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Unweighted loss of every selected layer (computed in `dtype` if given)."""
        out = {}
        for layer in self.layers:
            units = unit_matrix(layer.param, layer.unit_dim)
            if dtype is not None:
                units = units.to(dtype)
            h, w = layer.sheet
            blurred = blur_sheet(units, self._blur(h, layer.factor_h, units), self._blur(w, layer.factor_w, units))
            out[layer.name] = cosine_loss(units, blurred)
        return out

    def total(self, per_layer: dict[str, torch.Tensor], scale: float = 1.0) -> torch.Tensor:
        """Reduce τ_l · loss_l over layers (mean or sum), times a schedule multiplier."""
        terms = [layer.weight * per_layer[layer.name] for layer in self.layers]
        total = torch.stack(terms).sum()
        if self.reduction == "mean":
            total = total / len(terms)
        return total * scale

    def __call__(self, scale: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total weighted loss, unweighted per-layer losses)."""
        per_layer = self.layer_losses()
        return self.total(per_layer, scale), per_layer
