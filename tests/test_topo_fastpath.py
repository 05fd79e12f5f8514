"""The fast TopoLoss (sparse sheet operator, analytic backward) equals the straightforward interpolate definition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from toponets_exp.topo import TopoLoss, blur_matrix, layer_loss, select_layers, sheet_shape
from toponets_exp.topo.blur import SheetBlur, sheet_blur_operator
from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.topoloss import SheetCosineLoss

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def interpolate_loss(weight: torch.Tensor, factor_h: float, factor_w: float, unit_dim: int = 0) -> torch.Tensor:
    """The definition with autograd: bilinear down by scale factor, up to (H, W), 1 - mean cosine."""
    units = weight.movedim(unit_dim, 0).reshape(weight.shape[unit_dim], -1)
    h, w = sheet_shape(units.shape[0])
    sheet = units.reshape(h, w, -1).permute(2, 0, 1).unsqueeze(0)
    down = F.interpolate(sheet, scale_factor=(1.0 / factor_h, 1.0 / factor_w), mode="bilinear")
    blurred = F.interpolate(down, size=(h, w), mode="bilinear")[0].permute(1, 2, 0).reshape(units.shape[0], -1)
    return 1.0 - F.cosine_similarity(units, blurred, dim=-1).mean()


def value_and_grad(fn, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss value and its gradient w.r.t. a fresh leaf copy of `weight`."""
    leaf = weight.detach().clone().requires_grad_(True)
    value = fn(leaf)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


CASES = [  # (weight shape, unit_dim, factor_h, factor_w)
    pytest.param((64, 16, 3, 3), 0, 3.0, 3.0, id="conv-8x8-phi3"),
    pytest.param((48, 20), 0, 2.5, 1.7, id="linear-6x8-noninteger"),
    pytest.param((13, 9), 0, 1.0, 4.3, id="linear-prime-1x13"),
    pytest.param((7, 2, 3, 3), 0, 1.0, 7.0, id="conv-prime-1x7-phi-is-side"),
    pytest.param((12, 96), 1, 2.0, 3.0, id="conv1d-fanin-major-8x12"),
    pytest.param((30, 11), 0, 1.0, 1.0, id="identity-blur-5x6"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,unit_dim,fh,fw", CASES)
def test_layer_loss_value_and_grad_equal_interpolate(shape, unit_dim, fh, fw, dtype) -> None:
    weight = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    ref_v, ref_g = value_and_grad(lambda p: interpolate_loss(p, fh, fw, unit_dim), weight)
    v, g = value_and_grad(lambda p: layer_loss(p, fh, fw, unit_dim), weight)
    assert v.dtype == dtype and g.shape == weight.shape
    torch.testing.assert_close(v, ref_v, **TOL[dtype])
    torch.testing.assert_close(g, ref_g, **TOL[dtype])


def test_fanin_major_storage_is_used_in_place() -> None:
    """A (in, out) weight read through unit_dim=1 (transformers Conv1D) gives the same gradient layout and values."""
    weight = torch.randn(40, 24, dtype=torch.float64)
    v_t, g_t = value_and_grad(lambda p: layer_loss(p, 2.0, 2.0, unit_dim=1), weight)
    v, g = value_and_grad(lambda p: layer_loss(p, 2.0, 2.0), weight.T.contiguous())
    torch.testing.assert_close(v_t, v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_t, g.T, rtol=1e-12, atol=1e-12)


def test_analytic_backward_passes_gradcheck() -> None:
    units = torch.randn(15, 4, dtype=torch.float64, requires_grad=True)
    blur = SheetBlur.for_sheet((3, 5), 1.5, 2.2, torch.float64, "cpu")
    assert torch.autograd.gradcheck(lambda u: SheetCosineLoss.apply(u, blur), (units,))


def test_zero_unit_matches_cosine_similarity_clamp() -> None:
    """A unit with zero weights (norm below the cosine eps) takes the same value and gradient as the reference."""
    weight = torch.randn(24, 6, dtype=torch.float64)
    weight[5] = 0.0
    ref_v, ref_g = value_and_grad(lambda p: interpolate_loss(p, 2.0, 2.0), weight)
    v, g = value_and_grad(lambda p: layer_loss(p, 2.0, 2.0), weight)
    torch.testing.assert_close(v, ref_v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g, ref_g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "h,w,fh,fw", [(8, 8, 3.0, 3.0), (6, 10, 2.5, 1.7), (1, 13, 1.0, 4.3), (16, 32, 3.0, 3.0), (8, 12, 2.0, 4.0)]
)
def test_sheet_operator_is_the_kronecker_of_the_axis_blurs(h, w, fh, fw) -> None:
    op = sheet_blur_operator(h, w, fh, fw, torch.float64)
    dense = torch.kron(blur_matrix(h, fh, torch.float64), blur_matrix(w, fw, torch.float64))
    torch.testing.assert_close(op.to_dense(), dense, rtol=0, atol=1e-15)
    per_row = torch.bincount(op.indices()[0], minlength=h * w)
    limit = 4 if all(f.is_integer() and int(f) % 2 == 1 for f in (float(fh), float(fw))) else 16
    assert int(per_row.max()) <= limit


class _Mixed(nn.Module):
    """Layers of several sheet geometries, storage orders and dtypes of fan-in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 64, 3)  # 8x8, fan-in 27
        self.conv_b = nn.Conv2d(5, 64, 1)  # 8x8, same geometry, other fan-in
        self.fc = nn.Linear(10, 13)  # prime: 1x13
        self.wide = nn.Linear(7, 48)  # 6x8
        self.emb = nn.Parameter(torch.randn(9, 30))  # fan-in-major (in, out): 5x6


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_topoloss_over_mixed_geometries_equals_per_layer_reference(reduction, dtype) -> None:
    torch.manual_seed(0)
    net = _Mixed().to(dtype)
    patterns = [{"pattern": "conv_*", "factor": 3, "weight": 2.0}, {"pattern": "fc", "factor": [1, 2.6]},
                {"pattern": "wide", "factor_h": 2.5, "factor_w": 1.7, "weight": 0.5}]
    layers = select_layers(net, patterns, 2.0, 1.0)
    layers.append(TopoLayer("emb", net, "emb", 1, 2.0, 2.0, 3.0, (5, 6)))
    loss = TopoLoss(layers, reduction)
    params = [l.param for l in layers]
    per_layer = loss.layer_losses(dtype=dtype)
    total = loss.total(per_layer, scale=0.7)
    grads = torch.autograd.grad(total, params)

    refs = {l.name: interpolate_loss(l.param, l.factor_h, l.factor_w, l.unit_dim) for l in layers}
    ref_total = torch.stack([l.weight * refs[l.name] for l in layers]).sum() * 0.7
    if reduction == "mean":
        ref_total = ref_total / len(layers)
    ref_grads = torch.autograd.grad(ref_total, params)
    for l in layers:
        torch.testing.assert_close(per_layer[l.name], refs[l.name].detach(), **TOL[dtype])
    torch.testing.assert_close(total, ref_total.detach(), **TOL[dtype])
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, **TOL[dtype])
    assert len(loss._blurs) == 4  # one cached operator per (sheet, factors, dtype, device)


def test_float32_maths_on_float64_weights_and_no_grad_path() -> None:
    """layer_losses(dtype) casts the units; under no_grad (validation logging) it still computes the values."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 20)).double()
    loss = TopoLoss(select_layers(net, ["0"], 2.0, 1.0))
    with torch.no_grad():
        value = loss.layer_losses(dtype=torch.float32)["0"]
    assert value.dtype == torch.float32 and not value.requires_grad
    torch.testing.assert_close(value, interpolate_loss(net[0].weight.float(), 2.0, 2.0).detach(), rtol=1e-5, atol=1e-6)


def test_double_backward_is_refused() -> None:
    weight = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(layer_loss(weight, 2.0, 2.0), weight, create_graph=True)
    with pytest.raises(RuntimeError):
        grad.sum().backward()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_accumulate_grad_adds_the_autograd_gradient_to_grad(reduction) -> None:
    """The fused path gives the values of layer_losses/total and adds exactly autograd's gradient to .grad."""
    torch.manual_seed(0)
    net = _Mixed().double()
    layers = select_layers(net, [{"pattern": "conv_*", "factor": 3}, {"pattern": "fc", "factor": [1, 2.6]},
                                 {"pattern": "wide", "weight": 0.0}], 2.0, 1.5)
    layers.append(TopoLayer("emb", net, "emb", 1, 2.0, 2.0, 3.0, (5, 6)))
    loss = TopoLoss(layers, reduction)
    params = [l.param for l in layers]
    per_layer = loss.layer_losses(dtype=torch.float32)
    total = loss.total(per_layer, scale=0.3)
    expected = torch.autograd.grad(total, params)
    existing = {l.name: torch.randn_like(l.param) for l in layers if l.name != "fc"}
    for l in layers:
        l.param.grad = existing[l.name].clone() if l.name in existing else None

    fused_total, fused_per_layer = loss.accumulate_grad(scale=0.3, dtype=torch.float32)
    torch.testing.assert_close(fused_total, total.detach(), rtol=1e-6, atol=1e-7)
    for l in layers:
        torch.testing.assert_close(fused_per_layer[l.name], per_layer[l.name].detach(), rtol=1e-6, atol=1e-7)
    for l, g in zip(layers, expected):
        before = existing.get(l.name, torch.zeros_like(l.param))
        assert l.param.grad.dtype == torch.float64
        torch.testing.assert_close(l.param.grad, before + g, rtol=1e-5, atol=1e-7)
    assert not fused_total.requires_grad


def test_concurrent_gradient_equals_the_fused_path() -> None:
    """ConcurrentTopoGrad (worker thread, param-shaped buffers, one foreach add) adds what accumulate_grad adds,
    for row-major, fan-in-major (unit_dim=1) and channels_last weights, leaving τ=0 layers untouched."""
    from toponets_exp.topo.overlap import ConcurrentTopoGrad

    torch.manual_seed(0)
    net = _Mixed()
    net.conv_a.to(memory_format=torch.channels_last)
    layers = select_layers(net, [{"pattern": "conv_*", "factor": 3}, {"pattern": "fc", "factor": [1, 2.6]},
                                 {"pattern": "wide", "weight": 0.0}], 2.0, 1.5)
    layers.append(TopoLayer("emb", net, "emb", 1, 2.0, 2.0, 3.0, (5, 6)))
    loss = TopoLoss(layers)
    start = {l.name: torch.randn_like(l.param) for l in layers}
    for l in layers:
        l.param.grad = start[l.name].clone()
    expected_total, expected = loss.accumulate_grad(scale=0.7, dtype=torch.float32)
    fused = {l.name: l.param.grad.clone() for l in layers}
    for l in layers:
        l.param.grad = start[l.name].clone()

    concurrent = ConcurrentTopoGrad(loss)
    concurrent.launch(0.7)
    assert concurrent.pending
    total, per_layer = concurrent.add_to_grads()
    concurrent.close()
    torch.testing.assert_close(total, expected_total, rtol=0, atol=0)
    assert per_layer.keys() == expected.keys()
    for l in layers:
        torch.testing.assert_close(l.param.grad, fused[l.name], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(net.wide.weight.grad, start["wide"], rtol=0, atol=0)
    assert not concurrent.pending and concurrent._executor is None
