"""Layer selection by name patterns, per-layer settings and the errors for bad selections."""

import pytest
from torch import nn
from torchvision.models import resnet18

from toponets_exp.errors import ConfigError
from toponets_exp.topo import select_layers


@pytest.fixture(scope="module")
def net():
    return resnet18(num_classes=10)


def test_default_resnet_pattern_selects_every_block_conv(net):
    names = [layer.name for layer in select_layers(net, ["layer*.*.conv*"], 3.0, 1.0)]
    assert len(names) == 16 and names[0] == "layer1.0.conv1" and names[-1] == "layer4.1.conv2"
    assert not any("downsample" in n for n in names)


def test_regex_and_per_layer_settings(net):
    layers = select_layers(net, [r"re:layer4\.\d\.conv1", {"pattern": "fc", "factor_h": 1, "factor_w": 2.5,
                                                           "weight": 7}], 2.0, 1.0)
    assert [(l.name, l.sheet, l.factor_h, l.factor_w, l.weight) for l in layers] == [
        ("layer4.0.conv1", (16, 32), 2.0, 2.0, 1.0), ("layer4.1.conv1", (16, 32), 2.0, 2.0, 1.0),
        ("fc", (2, 5), 1.0, 2.5, 7.0)]


def test_custom_weight_attribute():
    rnn = nn.Sequential(nn.LSTM(8, 16))
    (layer,) = select_layers(rnn, [{"pattern": "0", "param": "weight_ih_l0"}], 2.0, 1.0)
    assert layer.param.shape == (64, 8) and layer.sheet == (8, 8)


@pytest.mark.parametrize("item", ["0", {"pattern": "0", "param": "weight"}], ids=["plain", "param=weight"])
def test_hf_conv1d_units_are_columns(item):
    """Conv1D(nf=48 outputs, nx=8 inputs) stores (8, 48): the 48 output features are the units, with or without
    `param` naming the weight, and the loss is that of the equivalent Linear (48, 8) weight."""
    import torch
    from transformers.pytorch_utils import Conv1D

    from toponets_exp.topo import TopoLoss, layer_loss

    conv = nn.Sequential(Conv1D(48, 8))
    (layer,) = select_layers(conv, [item], 2.0, 1.0)
    assert layer.unit_dim == 1 and layer.sheet == (6, 8)
    (value,) = TopoLoss([layer]).layer_losses().values()
    expected = layer_loss(conv[0].weight.detach().T.contiguous(), 2.0, 2.0)
    assert torch.allclose(value, expected, atol=1e-6)


@pytest.mark.parametrize("layers,factor,match", [
    (["nope*"], 3.0, r"matches no layer.*layer1\.0\.conv1"),
    (["layer1.0.bn1"], 3.0, "BatchNorm2d, which has no sheet"),
    (["layer1.*"], 3.0, "BasicBlock, which has no sheet"),
    (["layer1.0.conv1"], 9.0, r"layer1\.0\.conv1.*sheet 8x8"),
    (["layer1.0.conv1"], 0.5, "factor_h"),
    (["layer1.0.conv1"], "big", "not a number"),
    ([{"pattern": "fc", "weight": -1}], 2.0, "weight=-1"),
    (["layer1.0.conv1", "layer1.*.conv1"], 2.0, "earlier topo.layers item"),
    ([], 2.0, "empty"),
])
def test_bad_selections(net, layers, factor, match):
    with pytest.raises(ConfigError, match=match):
        select_layers(net, layers, factor, 1.0)


def test_is_hf_conv1d_is_an_isinstance_check():
    from transformers.models.gpt2.modeling_gpt2 import GPT2MLP, GPT2Config
    from transformers.pytorch_utils import Conv1D

    from toponets_exp.topo.module_types import is_hf_conv1d

    class Conv1D_(nn.Module):  # noqa: N801 - same-named look-alikes are not transformers' Conv1D
        pass

    Conv1D_.__name__ = "Conv1D"
    Conv1D_.__module__ = "transformers.fake"

    class Subclass(Conv1D):
        pass

    mlp = GPT2MLP(32, GPT2Config(n_embd=8))
    assert is_hf_conv1d(mlp.c_fc) and is_hf_conv1d(Conv1D(4, 3)) and is_hf_conv1d(Subclass(4, 3))
    assert not any(is_hf_conv1d(m) for m in (Conv1D_(), nn.Conv1d(3, 4, 1), nn.Linear(3, 4), mlp))


def test_is_hf_conv1d_does_not_import_transformers_modules():
    import subprocess
    import sys

    code = ("import sys; from torch import nn; from toponets_exp.topo.module_types import is_hf_conv1d; "
            "before = 'transformers.pytorch_utils' in sys.modules; assert not is_hf_conv1d(nn.Linear(2, 2)); "
            "print(before, 'transformers.pytorch_utils' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_an_unknown_loss_is_named_by_its_key(net):
    """topo.loss (the default of every item) and an item's own loss are checked by one rule, each naming its key."""
    from toponets_exp.topo import TopoLossCallback

    with pytest.raises(ConfigError, match=r"^topo.loss='weights' is not a topographic loss; use one of topoloss, "
                                          r"spatial_correlation, wiring$"):
        select_layers(net, ["layer1.0.conv1"], 2.0, 1.0, loss="weights")
    with pytest.raises(ConfigError, match=r"^topo.layers\[0\].loss='x' is not a topographic loss"):
        select_layers(net, [{"pattern": "layer1.0.conv1", "loss": "x"}], 2.0, 1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'loss'"):  # the layers carry their loss
        TopoLossCallback([], loss="weights")
