"""Sheet downsampling of a model's (topo layer, next map) pairs and the task metric per factor (TopoNets, Sec. 5).

A topo layer with N = H·W output units (sheet from `sheet_shape`, unit i at row i // W, column i % W) feeds one
next linear map through an elementwise nonlinearity φ (transformer MLP: ``c_fc -> GELU -> c_proj``; residual
block: ``conv1 -> bn1 -> ReLU -> conv2``). Downsampling by k replaces the N units by N/k² units, one per k×k block
of the sheet (block (a, b) becomes unit a·(W/k) + b): the new unit's incoming weights and bias are the block's
average (P W₁, P b₁ with P the (N/k², N) block-averaging matrix), and the next map's input weights of the block's
units are summed (W₂ Mᵀ with M = k²P the 0/1 block-membership matrix); the next map's bias is kept.

Exactness for perfectly topographic layers. If every unit in a block has the same incoming weights and bias
(the rows of W₁, b₁ are constant within blocks), then W₁ = Mᵀ(P W₁) and b₁ = Mᵀ(P b₁), so the hidden vector is
h = φ(W₁x + b₁) = φ(Mᵀ(P W₁ x + P b₁)) = Mᵀ φ(P W₁ x + P b₁) = Mᵀ g, because Mᵀ only copies each block's value to
its k² units and φ acts elementwise. The next map then gives W₂ h + b₂ = (W₂ Mᵀ) g + b₂, exactly the downsampled
pair's output. For convolutions the same holds at every spatial position (channels are the units; the pooled
kernel is the block's average kernel). Without within-block constancy the pooled unit only approximates its block,
which is what the metric-vs-k curve measures: smooth (topographic) sheets lose little.

BatchNorm between the maps. An eval-mode BatchNorm is a per-unit affine map y_i = a_i z_i + c_i with
a_i = γ_i / √(σ²_i + ε) and c_i = β_i − a_i μ_i. It is folded into the unit before pooling: the pooled unit's
weights are the block average of a_i w_i (plus a_i b_i for a conv bias) and its shift the block average of c_i,
i.e. the pooled unit is the average of its block's *normalised* units, the same rule as above applied to the
effective (BN-folded) incoming map. The new BatchNorm carries that pooled shift as β with γ = 1, μ = 0 and
σ² = 1 − ε, so in eval mode it adds the shift and scales by 1/√(σ² + ε) = 1; the exactness argument then holds
whenever the normalised units (a_i w_i, c_i) are constant within blocks. The replacement BatchNorm's statistics
describe the folded map, so the downsampled model is for evaluation, not for further training in train mode.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn

from toponets_exp.brain.efficiency import block_pool
from toponets_exp.evaluation.recording import resolve_modules
from toponets_exp.topo.module_types import is_hf_conv1d
from toponets_exp.topo.sheet import sheet_shape

log = logging.getLogger(__name__)
Evaluate = Callable[[nn.Module], float]


def _axes(module: nn.Module, name: str) -> tuple[int, int]:
    """(output-unit axis, input axis) of a supported linear map's weight."""
    if is_hf_conv1d(module):
        return 1, 0
    if isinstance(module, nn.Linear):
        return 0, 1
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise ValueError(f"layer {name!r} is a grouped convolution (groups={module.groups}); downsampling "
                              "needs groups=1")
        return 0, 1
    raise ValueError(f"layer {name!r} is a {type(module).__name__}; downsampling supports Linear, Conv2d and "
                      "transformers Conv1D")


def _resized(module: nn.Module, n_in: int | None, n_out: int | None, weight: torch.Tensor,
             bias: torch.Tensor | None) -> nn.Module:
    """A new module of the same kind with n_in inputs / n_out outputs (None: unchanged), holding these tensors."""
    if isinstance(module, nn.Linear):
        new = nn.Linear(n_in or module.in_features, n_out or module.out_features, bias=bias is not None)
    elif isinstance(module, nn.Conv2d):
        new = nn.Conv2d(n_in or module.in_channels, n_out or module.out_channels, module.kernel_size,
                        stride=module.stride, padding=module.padding, dilation=module.dilation,
                        bias=bias is not None, padding_mode=module.padding_mode)
    else:
        nx, nf = module.weight.shape
        new = type(module)(n_out or nf, n_in or nx)
    new = new.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    new.train(module.training)
    return new


def _eval_affine(norm: nn.BatchNorm2d, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, c) of the eval-mode BatchNorm as y = a·z + c per channel."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError(f"BatchNorm {name!r} tracks no running statistics, so it is not a fixed affine map in "
                          "eval mode and cannot be folded; downsample a pair without it")
    scale = norm.running_var.add(norm.eps).rsqrt()
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -scale * norm.running_mean
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift


def _pooled_norm(norm: nn.BatchNorm2d, shift: torch.Tensor) -> nn.BatchNorm2d:
    """An eval-identity BatchNorm over len(shift) channels adding `shift` (γ=1, μ=0, σ²=1−ε)."""
    new = nn.BatchNorm2d(len(shift), eps=norm.eps, momentum=norm.momentum, affine=True,
                         track_running_stats=True).to(device=shift.device, dtype=shift.dtype)
    with torch.no_grad():
        new.bias.copy_(shift)
        new.running_var.fill_(1.0 - norm.eps)
    new.train(norm.training)
    return new


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted path `name`."""
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _check_pair(first: nn.Module, second: nn.Module, layer_name: str, next_name: str, k: int) -> tuple[int, int]:
    """Validate the pair and k; return the sheet (H, W) of the first layer."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"downsampling factor k={k!r} must be a positive integer")
    out_axis, _ = _axes(first, layer_name)
    _, in_axis = _axes(second, next_name)
    n_units = first.weight.shape[out_axis]
    if second.weight.shape[in_axis] != n_units:
        raise ValueError(f"layer {next_name!r} takes {second.weight.shape[in_axis]} inputs but {layer_name!r} has "
                          f"{n_units} units; the pair must be (layer, the linear map reading its units)")
    if isinstance(first, nn.Conv2d) != isinstance(second, nn.Conv2d):
        raise ValueError(f"layers {layer_name!r} and {next_name!r} must both be convolutions or both be linear")
    h, w = sheet_shape(n_units)
    if h % k or w % k:
        raise ValueError(f"k={k} does not divide the {h}x{w} sheet of layer {layer_name!r} ({n_units} units); "
                          f"use a k that divides both {h} and {w}")
    return h, w


def _downsample_inplace(model: nn.Module, layer_name: str, next_name: str, k: int,
                        norm_name: str | None = None) -> None:
    """Replace the pair (and its BatchNorm, if any) in `model` by their k×k sheet-downsampled versions."""
    first, second = resolve_modules(model, [layer_name, next_name]).values()
    sheet = _check_pair(first, second, layer_name, next_name, k)
    out_axis, _ = _axes(first, layer_name)
    _, in_axis = _axes(second, next_name)
    n_units = first.weight.shape[out_axis]
    with torch.no_grad():
        weight, bias = first.weight.detach(), first.bias.detach() if first.bias is not None else None
        if norm_name is not None:
            norm = resolve_modules(model, [norm_name])[norm_name]
            if not isinstance(norm, nn.BatchNorm2d) or norm.num_features != n_units:
                raise ValueError(f"norm {norm_name!r} must be a BatchNorm2d over the {n_units} units of "
                                  f"{layer_name!r}")
            scale, shift = _eval_affine(norm, norm_name)
            shape = [1] * weight.ndim
            shape[out_axis] = n_units
            weight = weight * scale.reshape(shape)
            shift = shift + scale * bias if bias is not None else shift
            bias = None
            _set_module(model, norm_name, _pooled_norm(norm, block_pool(shift, 0, sheet, k, "mean")))
        new_weight = block_pool(weight, out_axis, sheet, k, "mean")
        new_bias = block_pool(bias, 0, sheet, k, "mean") if bias is not None else None
        next_weight = block_pool(second.weight.detach(), in_axis, sheet, k, "sum")
        next_bias = second.bias.detach() if second.bias is not None else None
    n_new = n_units // (k * k)
    _set_module(model, layer_name, _resized(first, None, n_new, new_weight, new_bias))
    _set_module(model, next_name, _resized(second, n_new, None, next_weight, next_bias))


def downsample_pair(model: nn.Module, layer_name: str, next_name: str, k: int,
                    norm_name: str | None = None) -> nn.Module:
    """A deep copy with `layer_name`'s sheet k×k-downsampled and `next_name`'s inputs summed per block.

    `norm_name`: the BatchNorm2d between the two maps, if any (e.g. a ResNet block's ``bn1``; the evaluation reads it
    from model.eval.downsample). See the module docstring for the rule.
    """
    reduced = copy.deepcopy(model)
    _downsample_inplace(reduced, layer_name, next_name, k, norm_name)
    return reduced


def _pair_size(model: nn.Module, pairs: Sequence[Sequence[str]]) -> int:
    """Number of parameters (weights and biases) of the two linear maps of every pair."""
    total = 0
    for pair in pairs:
        for module in resolve_modules(model, list(pair[:2])).values():
            total += sum(p.numel() for p in module.parameters(recurse=False))
    return total


def downsampling_curve(model: nn.Module, pairs: Sequence[Sequence[str]], factors: Sequence[int] = (1, 2, 4),
                       *, evaluate: Evaluate) -> list[dict]:
    """evaluate(model with every pair downsampled by k) per k, with the fraction of the pairs' parameters kept.

    pairs: (layer, next) or (layer, next, batchnorm) names. Each row: factor, params_kept, params_total,
    kept_fraction (weights and biases of the pairs' two maps), metric.
    """
    if not pairs:
        raise ValueError("pairs is empty; give (layer, next_layer) name pairs, "
                          "e.g. ('transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj')")
    for pair in pairs:
        if len(pair) not in (2, 3):
            raise ValueError(f"pair {tuple(pair)!r} must be (layer, next) or (layer, next, batchnorm)")
    total = _pair_size(model, pairs)
    rows = []
    for k in factors:
        reduced = copy.deepcopy(model)
        for pair in pairs:
            _downsample_inplace(reduced, pair[0], pair[1], k, pair[2] if len(pair) == 3 else None)
        kept = _pair_size(reduced, pairs)
        rows.append({"factor": int(k), "params_kept": kept, "params_total": total, "kept_fraction": kept / total,
                     "metric": float(evaluate(reduced))})
        log.info("Sheet downsampling: factor %d, %.3g of the pairs' parameters kept -> metric %.4g", k,
                 kept / total, rows[-1]["metric"])
    return rows
