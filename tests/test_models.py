"""Backbones: shapes, BlurPool placement and arithmetic, GPT details, default topo layers, a TopoLoss step each."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy import ndimage
from torch import nn

from reference_topo import np_layer_loss
from toponets_exp.errors import ConfigError
from toponets_exp.models import BlurPoolConv2d, gpt, resnet18, vit_b_32
from toponets_exp.models.blurpool import blur_kernel
from toponets_exp.models.gpt_neo import gpt_neo_125m
from toponets_exp.topo import TopoLoss, select_layers

CONF = Path(__file__).resolve().parents[1] / "conf"
TINY = {
    "resnet18": [],
    "resnet50": ["model.net.small_input=true"],
    "vit_b_32": ["model.net.patch_size=4", "model.net.num_layers=2", "model.net.num_heads=2",
                 "model.net.hidden_dim=16", "model.net.mlp_dim=36"],
    "nanogpt": ["+data.vocab_size=50", "+data.block_size=16", "model.net.n_layer=2", "model.net.n_head=2",
                "model.net.n_embd=16"],
    "gpt_neo_125m": ["+data.vocab_size=50", "model.net.num_layers=3", "model.net.num_heads=2",
                     "model.net.hidden_size=16", "model.net.max_position_embeddings=32"],
}
EXPECTED_TOPO = {
    "resnet18": [f"layer{s}.{b}.conv{c}" for s in range(1, 5) for b in range(2) for c in (1, 2)],
    "resnet50": [f"layer{s}.{b}.conv{c}" for s, n in zip(range(1, 5), (3, 4, 6, 3)) for b in range(n)
                 for c in (1, 2, 3)],
    "vit_b_32": [f"encoder.layers.encoder_layer_{i}.mlp.0" for i in range(2)],
    "nanogpt": [f"transformer.h.{i}.mlp.c_fc" for i in range(2)],
    "gpt_neo_125m": [f"transformer.h.{i}.mlp.c_fc" for i in range(3)],
}


@cache
def composed(model: str):
    """The run config for `model=<model>` at its tiny size."""
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose("config", overrides=[f"model={model}", *TINY[model]])


@cache
def _built(model: str) -> tuple[nn.Module, torch.Tensor]:
    """Built once per session: the tiny backbone from its config, and an input batch for it."""
    cfg = composed(model)
    torch.manual_seed(0)
    net = instantiate(cfg.model.net)
    if model in ("nanogpt", "gpt_neo_125m"):
        return net, torch.randint(0, cfg.data.vocab_size, (2, 12))
    return net, torch.randn(2, 3, cfg.data.image_size, cfg.data.image_size)


def net_and_input(model: str) -> tuple[nn.Module, torch.Tensor]:
    """A fresh copy of the tiny configured backbone (tests may train it), and its input batch."""
    net, x = _built(model)
    return copy.deepcopy(net), x


def blurred_names(net: nn.Module) -> set[str]:
    """Names of the convs that got a BlurPool wrapper."""
    return {name for name, m in net.named_modules() if isinstance(m, BlurPoolConv2d)}


# --- shapes -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("blurpool", [False, True])
def test_resnet18_forward_shape(blurpool):
    net = resnet18(num_classes=7, small_input=True, blurpool=blurpool).eval()
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 7)


def test_vit_forward_shape_and_size_checks():
    net = vit_b_32(num_classes=5, image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32)
    assert net(torch.randn(3, 3, 16, 16)).shape == (3, 5)
    assert len(net.encoder.layers) == 2 and net.encoder.layers[0].mlp[0].out_features == 32
    with pytest.raises(ConfigError, match=r"image_size=16 is not a multiple of model.net.patch_size=32: set "
                       r"data.image_size .* to a multiple of 32, or a patch size that divides it, e.g. "
                       r"model.net.patch_size=4 \(4x4 patches\)"):
        vit_b_32(image_size=16)
    with pytest.raises(ConfigError, match="hidden_dim=10 is not a multiple"):
        vit_b_32(image_size=32, hidden_dim=10, num_heads=4)


def test_vit_default_is_b32():
    net = vit_b_32(num_classes=1000)
    assert net.patch_size == 32 and net.hidden_dim == 768 and len(net.encoder.layers) == 12
    assert net.encoder.layers[0].mlp[0].weight.shape == (3072, 768)
    assert net.encoder.layers[0].self_attention.num_heads == 12


@pytest.mark.parametrize("model", list(TINY))
def test_configured_backbones_run(model):
    net, x = net_and_input(model)
    out = net(x)
    logits = getattr(out, "logits", out)
    cfg = composed(model)
    if model in ("nanogpt", "gpt_neo_125m"):
        assert logits.shape[:2] == x.shape and logits.shape[2] >= cfg.data.vocab_size
    else:
        assert logits.shape == (2, cfg.data.num_classes)


# --- BlurPool -----------------------------------------------------------------------------------------------------

def test_blurpool_placement_resnet18():
    net = resnet18(blurpool=True)
    stages = (2, 3, 4)
    assert blurred_names(net) == {f"layer{s}.0.{c}" for s in stages for c in ("conv1", "downsample.0")}
    assert isinstance(net.conv1, nn.Conv2d)  # stem: stride 2 but 3 input channels, not blurred
    keys = set(net.state_dict())  # the official checkpoint's key layout
    assert {"layer2.0.conv1.conv.weight", "layer2.0.conv1.blur_filter", "layer4.0.downsample.0.conv.weight",
            "layer4.0.downsample.1.weight"} <= keys
    assert "layer2.0.conv1.weight" not in keys


def test_blurpool_placement_resnet50():
    net, _ = _built("resnet50")  # blurpool=true in conf/model/resnet50.yaml
    assert blurred_names(net) == {f"layer{s}.0.{c}" for s in (2, 3, 4) for c in ("conv2", "downsample.0")}
    for name in blurred_names(net):
        conv = net.get_submodule(name).conv
        assert conv.stride == (2, 2) and conv.in_channels >= 16


def test_blur_kernel_is_normalised_binomial():
    kernel = blur_kernel(5).numpy()
    reference = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    assert kernel.shape == (5, 1, 3, 3)
    for c in range(5):
        np.testing.assert_allclose(kernel[c, 0], reference)
    assert np.isclose(reference.sum(), 1.0)


def test_blurpool_forward_matches_scipy_reference():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, kernel_size=3, stride=2, padding=1, bias=False)
    wrapped = BlurPoolConv2d(conv)
    x = torch.randn(2, 16, 9, 11)
    reference_blur = np.stack([[ndimage.correlate(x[b, c].numpy(), np.outer([1, 2, 1], [1, 2, 1]) / 16.0,
                                                  mode="constant", cval=0.0)
                                for c in range(16)] for b in range(2)])
    expected = conv(torch.from_numpy(reference_blur).float())
    got = wrapped(x)
    assert got.shape == conv(x).shape == (2, 8, 5, 6)  # the conv keeps its stride: same size as without blur
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert wrapped.weight is conv.weight
    assert not any(p is wrapped.blur_filter for p in wrapped.parameters())  # fixed: a buffer, never trained


# --- nanoGPT ------------------------------------------------------------------------------------------------------

def gpt2_param_count(vocab: int, context: int, layers: int, width: int) -> int:
    """Unique parameters of a bias-free GPT-2 with tied embeddings, by hand."""
    per_block = 2 * width + 3 * width * width + width * width + 2 * 4 * width * width  # ln_1, ln_2 weights only
    return vocab * width + context * width + layers * per_block + width


def test_gpt_full_size_parameter_count():
    net = gpt()
    count = sum(p.numel() for p in net.parameters())
    assert count == gpt2_param_count(50304, 1024, 12, 768)
    assert abs(count - 124e6) < 1e6
    assert net.lm_head.weight.shape == (50304, 768) and not any(n.endswith("bias") for n, _ in net.named_parameters())


def test_gpt_weight_tying_and_vocab_padding():
    net = gpt(vocab_size=100, block_size=8, n_layer=1, n_head=2, n_embd=8)
    assert net.lm_head.weight.shape[0] == 128  # 100 padded up to a multiple of 64
    assert net.transformer.wte.weight is net.lm_head.weight
    logits = net(torch.randint(0, 100, (2, 8)))
    logits.sum().backward()
    assert net.lm_head.weight.grad is not None
    assert len([p for p in net.parameters() if p.shape == (128, 8)]) == 1
    unpadded = gpt(vocab_size=100, vocab_multiple=1, block_size=8, n_layer=1, n_head=2, n_embd=8)
    assert unpadded.lm_head.out_features == 100


def test_gpt_is_causal_and_checks_context():
    torch.manual_seed(0)
    net = gpt(vocab_size=64, block_size=10, n_layer=2, n_head=2, n_embd=16).eval()
    idx = torch.randint(0, 64, (1, 10))
    changed = idx.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 64
    a, b = net(idx), net(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    with pytest.raises(ValueError, match="block_size=10"):
        net(torch.randint(0, 64, (1, 11)))
    with pytest.raises(ConfigError, match="n_embd=10 is not a multiple of model.net.n_head=4"):
        gpt(n_embd=10, n_head=4)


def test_gpt_init_scales_residual_projections():
    torch.manual_seed(0)
    net = gpt(vocab_size=64, block_size=8, n_layer=8, n_head=4, n_embd=256)
    std_proj = net.transformer.h[0].mlp.c_proj.weight.std().item()
    std_fc = net.transformer.h[0].mlp.c_fc.weight.std().item()
    assert std_fc == pytest.approx(0.02, rel=0.05)
    assert std_proj == pytest.approx(0.02 / np.sqrt(2 * 8), rel=0.05)


def test_gpt_dropout_only_in_training():
    net = gpt(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.5)
    idx = torch.randint(0, 64, (2, 8))
    net.eval()
    torch.testing.assert_close(net(idx), net(idx))
    net.train()
    assert not torch.allclose(net(idx), net(idx))


# --- GPT-Neo ------------------------------------------------------------------------------------------------------

def gpt_neo_param_count(vocab: int, positions: int, layers: int, width: int) -> int:
    """Unique parameters of GPT-Neo (q/k/v without bias, out_proj and MLP with bias, tied head), by hand."""
    attention = 3 * width * width + width * width + width
    mlp = width * 4 * width + 4 * width + 4 * width * width + width
    return vocab * width + positions * width + layers * (attention + mlp + 4 * width) + 2 * width


def test_gpt_neo_125m_architecture():
    net = gpt_neo_125m()
    assert sum(p.numel() for p in net.parameters()) == gpt_neo_param_count(50257, 2048, 12, 768)
    assert net.config.attention_layers == ["global", "local"] * 6 and net.config.window_size == 256
    assert net.lm_head.weight is net.transformer.wte.weight
    assert type(net.transformer.h[0].mlp.c_fc) is nn.Linear


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_gpt_neo_attention_types_follow_layers(layers):
    net = gpt_neo_125m(vocab_size=40, num_layers=layers, num_heads=2, hidden_size=8, max_position_embeddings=16)
    assert net.config.attention_layers == (["global", "local"] * layers)[:layers]
    assert len(net.transformer.h) == layers
    assert net(torch.randint(0, 40, (2, 16))).logits.shape == (2, 16, 40)


# --- default topo layers and one TopoLoss step --------------------------------------------------------------------

@pytest.mark.parametrize("model", list(TINY))
def test_default_topo_patterns_select_expected_layers(model):
    cfg = composed(model)
    net, _ = net_and_input(model)
    layers = OmegaConf.to_container(cfg.model.topo_layers)
    selected = select_layers(net, layers, cfg.model.topo_factor, 1.0)
    assert [layer.name for layer in selected] == EXPECTED_TOPO[model]
    assert cfg.topo.factor == cfg.model.topo_factor == 3.0


def test_resnet_topo_selection_same_with_and_without_blurpool():
    layers = OmegaConf.to_container(composed("resnet18").model.topo_layers)
    plain = select_layers(resnet18(blurpool=False), layers, 3.0, 1.0)
    blurred = select_layers(resnet18(blurpool=True), layers, 3.0, 1.0)
    assert [l.name for l in plain] == [l.name for l in blurred]
    assert [tuple(l.param.shape) for l in plain] == [tuple(l.param.shape) for l in blurred]
    wrapped = {l.name: l for l in blurred}["layer3.0.conv1"]
    assert wrapped.param is wrapped.module.conv.weight


@pytest.mark.parametrize("model", ["resnet18", "vit_b_32", "nanogpt", "gpt_neo_125m"])  # one per family
def test_one_topo_step_lowers_topo_loss(model):
    cfg = composed(model)
    net, _ = net_and_input(model)
    layers = select_layers(net, OmegaConf.to_container(cfg.model.topo_layers), cfg.model.topo_factor, 1.0)
    topo = TopoLoss(layers)
    before, per_layer = topo()
    for layer in layers:  # TopoLoss per layer against the independent NumPy derivation of that weight's loss
        weight = layer.param.detach().double().movedim(layer.unit_dim, 0).numpy()
        expected = np_layer_loss(weight, layer.factor_h, layer.factor_w)
        assert float(per_layer[layer.name].detach()) == pytest.approx(expected, abs=1e-5), layer.name
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    optimizer.zero_grad()
    before.backward()
    topo_params = {id(layer.param) for layer in layers}
    assert all((p.grad is not None) == (id(p) in topo_params) for p in net.parameters())
    optimizer.step()
    after, per_layer_after = topo()
    assert after.item() < before.item()
    assert all(per_layer_after[n] < per_layer[n] for n in per_layer)
