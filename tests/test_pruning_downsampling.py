"""Pruning (exact sparsity, smallest |w| removed) and sheet downsampling (identity cases, independent reference)."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock
from transformers import GPTNeoConfig, GPTNeoForCausalLM
from transformers.pytorch_utils import Conv1D
from transformers.utils import logging as hf_logging

from toponets_exp.evaluation.downsampling import downsample_pair, downsampling_curve
from toponets_exp.evaluation.pruning import prune_l1, pruning_curve

hf_logging.set_verbosity_error()


def mlp(act: nn.Module, hidden: int = 64, dtype=torch.float64) -> nn.Sequential:
    """Linear(16 -> hidden) -> act -> Linear(hidden -> 8): a transformer-MLP-shaped pair."""
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(fc=nn.Linear(16, hidden), act=act, proj=nn.Linear(hidden, 8)))
    return net.to(dtype)


def blockwise(values: torch.Tensor, sheet: tuple[int, int], k: int) -> torch.Tensor:
    """Make rows of `values` (units first) constant within k×k blocks of the row-major sheet, by explicit indexing."""
    h, w = sheet
    out = values.clone()
    for i in range(h * w):
        r, c = divmod(i, w)
        out[i] = values[(r // k * k) * w + (c // k * k)]  # copy the block's top-left unit
    return out


def reference_downsample(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, sheet, k: int):
    """Loop-based reference: new unit (a, b) averages units (a·k+i, b·k+j); the next map sums their columns."""
    h, w = sheet
    n_new = (h // k) * (w // k)
    nw1 = np.zeros((n_new, w1.shape[1]))
    nb1 = np.zeros(n_new)
    nw2 = np.zeros((w2.shape[0], n_new))
    for a in range(h // k):
        for b in range(w // k):
            j = a * (w // k) + b
            members = [(a * k + di) * w + (b * k + dj) for di in range(k) for dj in range(k)]
            nw1[j] = w1[members].mean(0)
            nb1[j] = b1[members].mean()
            nw2[:, j] = w2[:, members].sum(1)
    return nw1, nb1, nw2


def test_prune_zero_is_exactly_the_model():
    net = mlp(nn.GELU(), dtype=torch.float32)
    x = torch.randn(10, 16)
    pruned = prune_l1(net, ["fc", "proj"], 0.0)
    assert torch.equal(pruned(x), net(x))
    assert pruned is not net


@pytest.mark.parametrize("amount", [0.2, 0.5, 0.8, 1.0])
def test_prune_reaches_the_sparsity_removing_smallest_magnitudes(amount):
    net = mlp(nn.ReLU(), dtype=torch.float32)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    pruned = prune_l1(net, ["fc"], amount)
    w_old, w_new = before["fc.weight"].numpy(), pruned.fc.weight.detach().numpy()
    n_zero = int((w_new == 0).sum())
    assert n_zero == round(amount * w_old.size)
    if 0 < n_zero < w_old.size:
        removed = np.abs(w_old[w_new == 0])
        kept = np.abs(w_old[w_new != 0])
        assert removed.max() <= kept.min()
        np.testing.assert_array_equal(w_new[w_new != 0], w_old[w_new != 0])
    assert torch.equal(pruned.proj.weight, before["proj.weight"]) and torch.equal(pruned.fc.bias, before["fc.bias"])
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())  # the original is untouched
    assert set(dict(pruned.named_parameters())) == set(before)  # prune.remove left plain parameters
    assert not pruned.fc._forward_pre_hooks


def test_pruning_curve_evaluates_each_sparsity(caplog):
    net = mlp(nn.ReLU(), dtype=torch.float32)
    with caplog.at_level("INFO", logger="toponets_exp.evaluation.pruning"):
        curve = pruning_curve(net, ["fc", "proj"], (0.0, 0.25, 0.5),
                              evaluate=lambda m: float((m.fc.weight == 0).float().mean()))
    assert curve == pytest.approx({0.0: 0.0, 0.25: 0.25, 0.5: 0.5})
    assert [r.getMessage() for r in caplog.records][1] == "L1 pruning: sparsity 0.25 -> metric 0.25"  # a line each
    with pytest.raises(ValueError, match="sparsity"):
        prune_l1(net, ["fc"], 1.5)
    with pytest.raises(ValueError, match="no weight"):
        prune_l1(net, ["act"], 0.5)


@pytest.mark.parametrize("act", [nn.GELU(), nn.ReLU()])
def test_k1_is_the_identity(act):
    net = mlp(act)
    x = torch.randn(20, 16, dtype=torch.float64)
    assert torch.equal(downsample_pair(net, "fc", "proj", 1)(x), net(x))


def test_weights_match_loop_reference():
    net = mlp(nn.GELU())
    sheet = (8, 8)
    for k in (2, 4):
        small = downsample_pair(net, "fc", "proj", k)
        w1, b1, w2 = reference_downsample(net.fc.weight.detach().numpy(), net.fc.bias.detach().numpy(),
                                          net.proj.weight.detach().numpy(), sheet, k)
        np.testing.assert_allclose(small.fc.weight.detach().numpy(), w1, rtol=1e-12)
        np.testing.assert_allclose(small.fc.bias.detach().numpy(), b1, rtol=1e-12)
        np.testing.assert_allclose(small.proj.weight.detach().numpy(), w2, rtol=1e-12)
        assert torch.equal(small.proj.bias, net.proj.bias)
        assert small.fc.out_features == 64 // k**2 and small.proj.in_features == 64 // k**2


@pytest.mark.parametrize("act", [nn.GELU(), nn.ReLU()])
@pytest.mark.parametrize("k", [2, 4])
def test_perfectly_topographic_pair_is_reproduced_and_random_is_not(act, k):
    net = mlp(act)
    x = torch.randn(50, 16, dtype=torch.float64)
    with torch.no_grad():
        random_out = net(x)
        assert (downsample_pair(net, "fc", "proj", k)(x) - random_out).abs().max() > 1e-2
        net.fc.weight.copy_(blockwise(net.fc.weight, (8, 8), k))
        net.fc.bias.copy_(blockwise(net.fc.bias, (8, 8), k))
        torch.testing.assert_close(downsample_pair(net, "fc", "proj", k)(x), net(x), rtol=1e-12, atol=1e-12)


def test_hf_conv1d_pair():
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(fc=Conv1D(36, 16), act=nn.GELU(), proj=Conv1D(8, 36))).double()
    with torch.no_grad():
        net.fc.weight.copy_(blockwise(net.fc.weight.T, (6, 6), 3).T)
        net.fc.bias.copy_(torch.randn(36, dtype=torch.float64))
        net.fc.bias.copy_(blockwise(net.fc.bias, (6, 6), 3))
        x = torch.randn(7, 16, dtype=torch.float64)
        small = downsample_pair(net, "fc", "proj", 3)
        assert small.fc.weight.shape == (16, 4) and small.proj.weight.shape == (4, 8)
        torch.testing.assert_close(small(x), net(x), rtol=1e-12, atol=1e-12)


def _topographic_block(fold_varied_bn: bool) -> BasicBlock:
    """A ResNet BasicBlock (64 channels, 8x8 sheet) whose BN-normalised conv1 units are constant in 2x2 blocks."""
    torch.manual_seed(0)
    block = BasicBlock(64, 64).double().eval()
    bn = block.bn1
    with torch.no_grad():
        for p in (bn.weight, bn.bias, bn.running_mean):
            p.copy_(torch.randn(64, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(64, dtype=torch.float64) + 0.5)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shared = blockwise(block.conv1.weight, (8, 8), 2)
        shift = blockwise(torch.randn(64, dtype=torch.float64), (8, 8), 2)
        if fold_varied_bn:  # per-unit BN differs, the normalised unit a_i·w_i, c_i is block-constant
            block.conv1.weight.copy_(shared / scale.reshape(64, 1, 1, 1))
            bn.bias.copy_(shift + scale * bn.running_mean)
        else:  # everything block-constant
            for p in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                p.copy_(blockwise(p, (8, 8), 2))
            block.conv1.weight.copy_(shared)
    return block


@pytest.mark.parametrize("fold_varied_bn", [False, True])
def test_resnet_block_with_batchnorm_is_reproduced(fold_varied_bn):
    block = _topographic_block(fold_varied_bn)
    x = torch.randn(3, 64, 6, 6, dtype=torch.float64)
    small = downsample_pair(block, "conv1", "conv2", 2, "bn1")
    assert small.conv1.out_channels == 16 and small.bn1.num_features == 16 and small.conv2.in_channels == 16
    with torch.no_grad():
        torch.testing.assert_close(small(x), block(x), rtol=1e-10, atol=1e-10)
        block.conv1.weight.add_(torch.randn_like(block.conv1.weight))
        assert (downsample_pair(block, "conv1", "conv2", 2, "bn1")(x) - block(x)).abs().max() > 1e-2


def test_bad_factor_and_pairs_are_config_errors():
    net = mlp(nn.GELU())
    with pytest.raises(ValueError, match=r"8x8 sheet of layer 'fc'"):
        downsample_pair(net, "fc", "proj", 3)
    with pytest.raises(ValueError, match="inputs"):
        downsample_pair(net, "proj", "fc", 2)
    with pytest.raises(ValueError, match="positive integer"):
        downsample_pair(net, "fc", "proj", 0)
    with pytest.raises(ValueError, match="act"):
        downsample_pair(net, "act", "proj", 2)


def test_downsampling_curve_reports_kept_fraction_and_metric():
    net = mlp(nn.GELU())
    x = torch.randn(30, 16, dtype=torch.float64)
    with torch.no_grad():
        reference = net(x)
        rows = downsampling_curve(net, [("fc", "proj")], (1, 2, 4),
                                  evaluate=lambda m: float((m(x) - reference).pow(2).mean()))
    full = (16 * 64 + 64) + (64 * 8 + 8)
    assert [r["factor"] for r in rows] == [1, 2, 4]
    for row in rows:
        n = 64 // row["factor"] ** 2
        assert row["params_total"] == full and row["params_kept"] == 16 * n + n + n * 8 + 8
        assert row["kept_fraction"] == pytest.approx(row["params_kept"] / full)
    assert rows[0]["metric"] == 0.0 and rows[2]["metric"] > 0.0


def test_gpt_neo_mlp_downsampling_end_to_end():
    torch.manual_seed(0)
    cfg = GPTNeoConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                       attention_types=[[["global", "local"], 1]], window_size=8, max_position_embeddings=64)
    model = GPTNeoForCausalLM(cfg).double().eval()
    pairs = [(f"transformer.h.{i}.mlp.c_fc", f"transformer.h.{i}.mlp.c_proj") for i in range(2)]
    ids = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        for name, _ in pairs:
            fc = model.get_submodule(name)
            fc.weight.copy_(blockwise(fc.weight, (8, 8), 2))
            fc.bias.copy_(blockwise(fc.bias, (8, 8), 2))
        rows = downsampling_curve(model, pairs, (1, 2, 4),
                                  evaluate=lambda m: float((m(ids).logits - model(ids).logits).abs().max()))
    assert rows[0]["metric"] < 1e-12 and rows[1]["metric"] < 1e-10 and rows[2]["metric"] > 1e-4
