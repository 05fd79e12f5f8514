"""Every sheet of the official `topoloss` package (0.0.2) — a layer's outputs, a Linear's inputs, a Linear's bias —
as `topo.layers` items: equal in value and gradient, and refused where the package asserts."""

import pytest
import topoloss
import torch
from torch import nn

from toponets_exp.errors import ConfigError
from toponets_exp.topo import TopoLoss, select_layers

OFFICIAL = {"output": topoloss.LaplacianPyramid, "input": topoloss.LaplacianPyramidOnInput,
            "bias": topoloss.LaplacianPyramidOnBias}


def item(kind: str, factor: tuple[float, float]) -> dict:
    """Our `topo.layers` item for one of the official losses on layer "layer"."""
    extra = {"input": {"side": "input"}, "bias": {"param": "bias"}}.get(kind, {})
    return {"pattern": "layer", "factor": list(factor), **extra}


def grads(loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    """∂loss/∂p for every p (zeros where it does not depend on p)."""
    out = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(out, params)]


@pytest.mark.parametrize("kind, layer, factor", [
    ("output", nn.Linear(20, 48), (2.0, 3.0)),
    ("output", nn.Conv2d(3, 35, 3), (2.5, 3.0)),
    ("input", nn.Linear(36, 24), (2.0, 2.0)),
    ("input", nn.Linear(30, 7), (1.5, 2.5)),
    ("bias", nn.Linear(10, 48), (2.0, 3.0)),
    ("bias", nn.Linear(10, 35), (5.0, 1.0)),
])
def test_value_and_gradient_equal_the_official_package(kind, layer, factor):
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("layer", layer)
    with torch.no_grad():
        layer.bias.normal_()  # the default init is small; a bias sheet with structure
    fh, fw = factor
    official = topoloss.TopoLoss([OFFICIAL[kind](layer_name="layer", factor_h=fh, factor_w=fw)]).compute(net)
    ours = TopoLoss(select_layers(net, [item(kind, factor)], 1.0, 1.0))
    total, per_layer = ours()
    torch.testing.assert_close(total, official, atol=1e-6, rtol=0)
    params = list(net.parameters())
    expected = grads(official, params)
    for a, b in zip(grads(total, params), expected):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    ours.accumulate_grad()  # the callback's path: the analytic gradient straight into .grad
    for p, b in zip(params, expected):
        torch.testing.assert_close(p.grad if p.grad is not None else torch.zeros_like(p), b, atol=1e-6, rtol=0)


def test_sheets_of_one_layer_have_their_own_names():
    net = nn.Sequential(nn.Linear(16, 12))
    layers = select_layers(net, ["0", {"pattern": "0", "side": "input"}, {"pattern": "0", "param": "bias"}], 2.0, 1.0)
    assert [layer.key for layer in layers] == ["0", "0[input]", "0[bias]"]
    assert [layer.sheet for layer in layers] == [(3, 4), (4, 4), (3, 4)]
    with pytest.raises(ConfigError, match=r"selects '0\[input\]', which an earlier topo.layers item selects"):
        select_layers(net, [{"pattern": "0", "side": "input"}, {"pattern": "*", "side": "input"}], 2.0, 1.0)


@pytest.mark.parametrize("entry, message", [
    ({"pattern": "fc_nobias", "param": "bias"}, r"param=bias, but 'fc_nobias' \(Linear\) has no bias"),
    ({"pattern": "conv", "param": "bias"}, r"param=bias needs a Linear .*; 'conv' is a Conv2d"),
    ({"pattern": "conv", "side": "input"}, r"side=input needs a matrix .*; 'conv' \(Conv2d\) has a 4-D weight"),
    ({"pattern": "fc", "side": "input", "param": "bias"}, "side=input and param=bias exclude each other"),
    ({"pattern": "fc", "side": "inputs"}, r"topo.layers\[0\].side='inputs' is not supported; use one of output, in"),
    ({"pattern": "fc", "side": "input", "factor": 5}, r"factor_h=5 is outside \[1, 4\] .*sheet 4x4 for 16 units"),
    ({"pattern": "fc", "param": "bias", "factor": [1, 5]}, r"factor_w=5 is outside \[1, 4\] .*sheet 3x4 for 12"),
    ({"pattern": "fc", "param": "bias", "loss": "spatial_correlation"}, "are TopoLoss sheets"),
])
def test_what_the_official_package_asserts_is_a_clear_config_error(entry, message):
    net = nn.Module()
    net.fc, net.fc_nobias, net.conv = nn.Linear(16, 12), nn.Linear(16, 12, bias=False), nn.Conv2d(3, 16, 3)
    with pytest.raises(ConfigError, match=message):
        select_layers(net, [entry], 2.0, 1.0)
