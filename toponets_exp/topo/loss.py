"""TopoLoss: 1 - cosine(unit weights, blurred sheet of unit weights), per layer and over a model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import FunctionCtx, once_differentiable

from toponets_exp.topo.sheet import sheet_shape, unit_matrix

COS_EPS = 1e-8  # F.cosine_similarity's default: a norm below it is clamped to it


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


def sheet_blur_operator(h: int, w: int, factor_h: float, factor_w: float, dtype: torch.dtype = torch.float32,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Sparse (H·W, H·W) matrix A_h ⊗ A_w of the whole sheet blur, built from the per-axis matrices' non-zeros.

    Bilinear resampling has at most 2 taps per output, so each axis has at most 4 non-zeros per row (2 for an
    integer φ, whose down-sampling grid falls on pixel centres) and A at most 16: applying it costs a few
    multiply-adds per weight, where dense per-axis matrices cost 2(H + W).
    """
    a_h = blur_matrix(h, factor_h, torch.float64).to_sparse()
    a_w = blur_matrix(w, factor_w, torch.float64).to_sparse()
    (row_h, col_h), (row_w, col_w) = a_h.indices(), a_w.indices()
    rows = (row_h[:, None] * w + row_w[None, :]).reshape(-1)
    cols = (col_h[:, None] * w + col_w[None, :]).reshape(-1)
    values = (a_h.values()[:, None] * a_w.values()[None, :]).reshape(-1)
    op = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (h * w, h * w), check_invariants=True)
    return op.coalesce().to(dtype=dtype, device=device)


class SheetCosineLoss(torch.autograd.Function):
    """1 - mean_i cos(u_i, (A u)_i) for a linear sheet blur A, with an analytic backward.

    Forward keeps only the blurred sheet and per-unit scalars (O(weights) memory); backward is
    ∂L/∂u = -(1/N) [α·b - β·u + Aᵀ(α·u - γ·b)] with α = 1/(|u||b|), β = cos/|u|², γ = cos/|b|² per unit.
    Norms are clamped at COS_EPS like F.cosine_similarity. `op` and `op_t` are A and Aᵀ (sparse).
    """

    @staticmethod
    def forward(ctx: FunctionCtx, units: torch.Tensor, op: torch.Tensor, op_t: torch.Tensor) -> torch.Tensor:
        blurred = torch.sparse.mm(op, units)
        norm_u = torch.linalg.vector_norm(units, dim=1)
        norm_b = torch.linalg.vector_norm(blurred, dim=1)
        denom_u, denom_b = norm_u.clamp_min(COS_EPS), norm_b.clamp_min(COS_EPS)
        alpha = (denom_u * denom_b).reciprocal()
        cos = torch.linalg.vecdot(units, blurred) * alpha
        beta = torch.where(norm_u >= COS_EPS, cos / denom_u.square(), 0.0)
        gamma = torch.where(norm_b >= COS_EPS, cos / denom_b.square(), 0.0)
        ctx.save_for_backward(units, blurred, op_t, alpha, beta, gamma)
        return 1.0 - cos.mean()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        units, blurred, op_t, alpha, beta, gamma = ctx.saved_tensors
        scale = grad * (-1.0 / units.shape[0])
        alpha, beta, gamma = (alpha * scale).unsqueeze(1), (beta * scale).unsqueeze(1), (gamma * scale).unsqueeze(1)
        through_blur = units * alpha
        through_blur.addcmul_(blurred, gamma, value=-1.0)
        out = torch.sparse.mm(op_t, through_blur)
        out.addcmul_(blurred, alpha).addcmul_(units, beta, value=-1.0)
        return out, None, None


def layer_loss(weight: torch.Tensor, factor_h: float, factor_w: float, unit_dim: int = 0) -> torch.Tensor:
    """Unweighted TopoLoss of one Linear (out, in) or Conv (out, in, kh, kw) weight; differentiable."""
    units = unit_matrix(weight, unit_dim)
    h, w = sheet_shape(units.shape[0])
    op = sheet_blur_operator(h, w, factor_h, factor_w, units.dtype, units.device)
    return SheetCosineLoss.apply(units, op, op.t().coalesce())


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
        self._operators: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _operator(self, layer: TopoLayer, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached sparse blur A and Aᵀ for this layer's sheet and factors, on `like`'s dtype and device."""
        key = (layer.sheet, layer.factor_h, layer.factor_w, like.dtype, like.device)
        if key not in self._operators:
            op = sheet_blur_operator(*layer.sheet, layer.factor_h, layer.factor_w, like.dtype, like.device)
            self._operators[key] = op, op.t().coalesce()
        return self._operators[key]

    def layer_losses(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Unweighted loss of every selected layer (computed in `dtype` if given)."""
        out = {}
        for layer in self.layers:
            units = unit_matrix(layer.param, layer.unit_dim)
            if dtype is not None:
                units = units.to(dtype)
            out[layer.name] = SheetCosineLoss.apply(units, *self._operator(layer, units))
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
