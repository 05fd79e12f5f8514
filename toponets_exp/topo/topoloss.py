"""TopoLoss: 1 - cosine(unit weights, blurred sheet of unit weights), per layer and over a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from toponets_exp.topo.blur import SheetBlur
from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.sheet import sheet_shape, unit_matrix
from toponets_exp.topo.wiring import add_wiring_grad, has_wiring_cost, wiring_cost, wiring_distances

COS_EPS = 1e-8  # F.cosine_similarity's default: a norm below it is clamped to it


def cosine_terms(units: torch.Tensor, blurred: torch.Tensor, whole: bool = False) -> tuple[torch.Tensor, ...]:
    """Per unit: cos(u, b) and the gradient coefficients α = 1/(|u||b|), β = cos/|u|², γ = cos/|b|².

    `whole`: one cosine between the whole sheet and its blur (cos of shape (1,)), its α, β, γ given to every unit.
    Norms are clamped at COS_EPS as in F.cosine_similarity (a clamped norm is a constant: its β or γ is 0).
    """
    dims = (0, 1) if whole else 1
    norm_u = torch.linalg.vector_norm(units, dim=dims).reshape(-1)
    norm_b = torch.linalg.vector_norm(blurred, dim=dims).reshape(-1)
    denom_u, denom_b = norm_u.clamp_min(COS_EPS), norm_b.clamp_min(COS_EPS)
    alpha = (denom_u * denom_b).reciprocal()
    dot = (units * blurred).sum().reshape(1) if whole else torch.linalg.vecdot(units, blurred)
    cos = dot * alpha
    beta = torch.where(norm_u >= COS_EPS, cos / denom_u.square(), 0.0)
    gamma = torch.where(norm_b >= COS_EPS, cos / denom_b.square(), 0.0)
    if whole:
        alpha, beta, gamma = (c.expand(units.shape[0]) for c in (alpha, beta, gamma))
    return cos, alpha, beta, gamma


class SheetCosineLoss(torch.autograd.Function):
    """1 - mean_i cos(u_i, (A u)_i) for a sheet blur A (`whole`: 1 - cos(u, A u) over the whole sheet), with the
    analytic backward of SheetBlur.add_grad.

    Forward keeps only the blurred sheet and per-unit scalars (O(weights) memory); no graph through the blur.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, units: torch.Tensor, blur: SheetBlur, whole: bool = False) -> torch.Tensor:
        blurred = blur.blur(units)
        cos, alpha, beta, gamma = cosine_terms(units, blurred, whole)
        ctx.blur, ctx.cosines = blur, cos.numel()
        ctx.save_for_backward(units, blurred, alpha, beta, gamma)
        return 1.0 - cos.mean()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        units, blurred, alpha, beta, gamma = ctx.saved_tensors
        scale = grad * (-1.0 / ctx.cosines)
        out = blurred.new_zeros(units.shape)
        return ctx.blur.add_grad(out, units, blurred, alpha * scale, beta * scale, gamma * scale), None, None


def contiguous_units(units: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Units row-major (and in `dtype`) in one pass: the sparse products read whole unit rows.

    Fan-in-major storage (transformers Conv1D, unit_dim=1) is copied: strided rows make them several times slower.
    """
    return units.to(dtype or units.dtype, memory_format=torch.contiguous_format).contiguous()  # no-op if both hold


def _is_view_of(view: torch.Tensor, base: torch.Tensor) -> bool:
    """Whether writing into `view` writes into `base` (same storage, not a reshaped copy)."""
    return view.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()


def layer_loss(weight: torch.Tensor, factor_h: float, factor_w: float, unit_dim: int = 0) -> torch.Tensor:
    """Unweighted TopoLoss of one Linear (out, in) or Conv (out, in, kh, kw) weight; differentiable."""
    units = contiguous_units(unit_matrix(weight, unit_dim))
    blur = SheetBlur.for_sheet(sheet_shape(units.shape[0]), factor_h, factor_w, units.dtype, units.device)
    return SheetCosineLoss.apply(units, blur)


Scale = float | Mapping[str, float]  # one τ multiplier for every layer, or one per layer name
Update = Callable[[torch.Tensor, float, int], torch.Tensor]  # adds (c / count) · ∂loss/∂units into a tensor


def layer_scale(scale: Scale, layer: TopoLayer) -> float:
    """The τ multiplier of `layer` in `scale`."""
    return scale[layer.key] if isinstance(scale, Mapping) else scale


class TopoLoss:
    """Model-level loss on the weights: reduction over layers of τ_l · loss_l, plus the unweighted per-layer values.

    loss_l is TopoLoss, or for a layer with loss="wiring" its wiring cost (toponets_exp.topo.wiring).
    """

    def __init__(self, layers: list[TopoLayer], reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction={reduction!r} is not supported; use 'mean' or 'sum'")
        unplaced = [layer.name for layer in layers if layer.loss == "wiring" and not has_wiring_cost(layer)]
        if unplaced:
            raise ValueError(f"wiring layer(s) {', '.join(unplaced)} have no placed inputs (in_sheet), hence no wiring "
                             "cost: pass the selection through toponets_exp.topo.selection.weight_layers")
        self.layers = layers
        self.reduction = reduction
        self._blurs: dict[tuple, SheetBlur] = {}
        self._distances: dict[tuple, torch.Tensor] = {}

    def _blur(self, layer: TopoLayer, like: torch.Tensor) -> SheetBlur:
        """Cached blur for this layer's sheet and factors, on `like`'s dtype and device."""
        key = (layer.sheet, layer.factor_h, layer.factor_w, like.dtype, like.device)
        if key not in self._blurs:
            self._blurs[key] = SheetBlur.for_sheet(layer.sheet, layer.factor_h, layer.factor_w, like.dtype, like.device)
        return self._blurs[key]

    def _wiring(self, layer: TopoLayer, like: torch.Tensor) -> torch.Tensor:
        """Cached (units, in channels) wiring distances of this layer, on `like`'s dtype and device."""
        key = (layer.sheet, layer.in_sheet, like.dtype, like.device)
        if key not in self._distances:
            self._distances[key] = wiring_distances(layer.sheet, layer.in_sheet, like.dtype, like.device)
        return self._distances[key]

    def _units(self, layer: TopoLayer, dtype: torch.dtype | None) -> torch.Tensor:
        """The layer's (units, fan-in) matrix in `dtype` if given, row-major (copied only if it is not), its rows in
        sheet order."""
        return layer.on_sheet(contiguous_units(layer.unit_rows(layer.param), dtype))

    def layer_losses(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Unweighted loss of every selected layer (computed in `dtype` if given)."""
        out = {}
        for layer in self.layers:
            units = self._units(layer, dtype)
            if layer.loss == "wiring":
                out[layer.key] = wiring_cost(units, self._wiring(layer, units))
            else:
                out[layer.key] = SheetCosineLoss.apply(units, self._blur(layer, units), layer.whole)
        return out

    def _value_and_update(self, layer: TopoLayer, units: torch.Tensor) -> tuple[torch.Tensor, Update]:
        """The layer's loss, and a function adding (c / count) · ∂loss/∂units into a (units, fan-in) tensor in place."""
        if layer.loss == "wiring":
            distances = self._wiring(layer, units)
            return wiring_cost(units, distances), lambda out, c, n: add_wiring_grad(out, units, distances, c / n)
        blur = self._blur(layer, units)
        blurred = blur.blur(units)
        cos, alpha, beta, gamma = cosine_terms(units, blurred, layer.whole)

        def update(out: torch.Tensor, c: float, count: int) -> torch.Tensor:
            k = -c / (count * cos.numel())  # loss = 1 - mean cos
            return blur.add_grad(out, units, blurred, alpha * k, beta * k, gamma * k)
        return 1.0 - cos.mean(), update

    @torch.no_grad()
    def accumulate_grad(self, scale: Scale = 1.0, dtype: torch.dtype | None = None,
                        into: Sequence[torch.Tensor | None] | None = None) -> tuple[torch.Tensor,
                                                                                   dict[str, torch.Tensor]]:
        """Add ∂total/∂W to each selected parameter's .grad, layer by layer, without autograd; (total, per-layer).

        The same numbers as autograd.grad(self.total(self.layer_losses(dtype), scale)) added to .grad, but each
        layer's gradient goes straight into .grad (sparse products accumulate in place) and its temporaries are
        freed before the next layer. Layers with τ = 0 and frozen ones (requires_grad=False) get their value only.
        `into` (one tensor shaped like each layer's parameter, or None to leave that layer out) receives the
        gradients instead of .grad.
        """
        per_layer = {}
        count = len(self.layers) if self.reduction == "mean" else 1
        for i, layer in enumerate(self.layers):
            param, units = layer.param, self._units(layer, dtype)
            per_layer[layer.key], add = self._value_and_update(layer, units)
            coef = layer.weight * layer_scale(scale, layer)
            if coef == 0.0 or not param.requires_grad or (into is not None and into[i] is None):
                continue  # a frozen parameter is never trained
            if into is not None:
                grad = into[i]
            else:
                if param.grad is None:
                    param.grad = torch.zeros_like(param)
                grad = param.grad
            target = layer.unit_rows(grad)
            if layer.order is None and target.dtype == units.dtype and target.is_contiguous() \
                    and _is_view_of(target, grad):
                add(target, coef, count)
            else:  # e.g. a channels_last gradient: its (units, fan-in) matrix is a copy, so add the update back
                delta = add(torch.zeros_like(units), coef, count)
                if layer.order is not None:  # sheet rows back to unit rows
                    delta = torch.empty_like(delta).index_copy_(0, layer.order.to(delta.device), delta)
                moved = grad.movedim(layer.unit_dim, 0)
                grad.add_(delta.reshape(moved.shape).movedim(0, layer.unit_dim))
        return self.total(per_layer, scale), per_layer

    def total(self, per_layer: dict[str, torch.Tensor], scale: Scale = 1.0) -> torch.Tensor:
        """Reduce m_l · τ_l · loss_l over layers (mean or sum), m_l the schedule multiplier(s) `scale`."""
        terms = [layer_scale(scale, layer) * layer.weight * per_layer[layer.key] for layer in self.layers]
        total = torch.stack(terms).sum()
        if self.reduction == "mean":
            total = total / len(terms)
        return total

    def __call__(self, scale: Scale = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total weighted loss, unweighted per-layer losses)."""
        per_layer = self.layer_losses()
        return self.total(per_layer, scale), per_layer
