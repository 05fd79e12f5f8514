"""TDANN's VISSL checkpoints and TopoLM's checkpoints: stand-ins in the published layouts load and reproduce the
saved nets exactly; files of other layouts, depths or variants are refused in one clear line."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import models

from toponets_exp.errors import CheckpointError
from toponets_exp.models.checkpoints import load_weights, read_checkpoint
from toponets_exp.models.nanogpt import topolm_gpt
from toponets_exp.models.resnet import tdann_resnet

from peer_standins import (TOPOLM_ARGS, SpatialTrunk, VisslResNetTrunk, save_topolm, save_vissl, simclr_file,
                           topolm_state, trained_like)

IMAGES = torch.randn(2, 3, 64, 64)


def test_simclr_trunk_reproduces_the_saved_net_exactly(tmp_path):
    path, source = simclr_file(tmp_path)
    assert any(key.startswith("_feature_blocks.layer4_1.") for key in torch.load(path)["classy_state_dict"]
               ["base_model"]["model"]["trunk"])  # the stand-in names every tensor twice, as TDANN's trunks do
    net = tdann_resnet(path, depth=18).eval()
    assert isinstance(net.fc, nn.Identity)
    with torch.no_grad():
        assert torch.equal(net(IMAGES), source(IMAGES))
        assert not torch.equal(models.resnet18(weights=None).eval()(IMAGES)[:, :512], source(IMAGES))
    assert read_checkpoint(path)[2] == "vissl"


def test_supervised_classifier_head_becomes_fc(tmp_path):
    torch.manual_seed(1)
    source = trained_like(models.resnet18(weights=None, num_classes=10))
    base = models.resnet18(weights=None, num_classes=10)
    base.load_state_dict(source.state_dict())
    base.fc = nn.Identity()
    heads = {"0.clf.0.weight": source.fc.weight.detach(), "0.clf.0.bias": source.fc.bias.detach()}
    path = save_vissl(tmp_path / "supervised.torch", VisslResNetTrunk(base).state_dict(), heads)
    with torch.no_grad():
        assert torch.equal(tdann_resnet(path).eval()(IMAGES), source(IMAGES))
        target = models.resnet18(weights=None, num_classes=10)
        assert torch.equal(load_weights(target, path).eval()(IMAGES), source(IMAGES))  # through format "auto"


def test_resnet50_trunk_drops_its_untrained_fc(tmp_path):
    torch.manual_seed(2)
    base = trained_like(models.resnet50(weights=None))  # SpatialResNet50 keeps torchvision's fc in the trunk
    path = save_vissl(tmp_path / "rn50.torch", SpatialTrunk(base).state_dict(), {})
    net = tdann_resnet(path).eval()
    base.fc = nn.Identity()
    with torch.no_grad():
        assert torch.equal(net(IMAGES), base(IMAGES))
    with pytest.raises(CheckpointError, match=r"holds a ResNet-50 trunk, not the ResNet-18 asked for$"):
        tdann_resnet(path, depth=18)


def test_wrong_depth_is_refused(tmp_path):
    path, _ = simclr_file(tmp_path)
    with pytest.raises(CheckpointError, match=r"holds a ResNet-18 trunk, not the ResNet-50 asked for$"):
        tdann_resnet(path, depth=50)


def edited_trunk(tmp_path: Path, edit) -> Path:
    """The SimCLR stand-in with its trunk state dict changed by `edit`."""
    path, _ = simclr_file(tmp_path)
    content = torch.load(path)
    edit(content["classy_state_dict"]["base_model"]["model"]["trunk"])
    torch.save(content, path)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda t: [t.pop(k) for k in ("base_model.layer4.1.bn2.weight", "_feature_blocks.layer4_1.bn2.weight")],
     r"missing: layer4\.1\.bn2\.weight"),
    (lambda t: t.update({"base_model.layer5.0.conv1.weight": torch.zeros(1)}), r"unexpected: layer5\.0\.conv1"),
    (lambda t: t.update({"module.conv1.weight": torch.zeros(1)}), r"trunk keys module\.conv1\.weight are neither"),
    (lambda t: t.update({"_feature_blocks.layer1_0.conv1.weight": t["base_model.layer1.0.conv1.weight"] + 1}),
     r"_feature_blocks\.layer1_0\.conv1\.weight do not repeat the 'base_model\.' tensors they alias$"),
])
def test_damaged_trunks_are_refused_in_one_line(tmp_path, edit, message):
    path = edited_trunk(tmp_path, edit)
    with pytest.raises(CheckpointError, match=message) as err:
        tdann_resnet(path)
    assert "\n" not in str(err.value)


def test_files_of_other_layouts_are_refused(tmp_path):
    torch.save(models.resnet18(weights=None).state_dict(), tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match=r"has no classy_state_dict; a VISSL checkpoint keeps the weights"):
        tdann_resnet(tmp_path / "plain.pt")
    torch.save({"classy_state_dict": {"base_model": {"trunk": {}}}}, tmp_path / "shallow.torch")
    with pytest.raises(CheckpointError, match=r"has no classy_state_dict/base_model/model;"):
        tdann_resnet(tmp_path / "shallow.torch")
    path, _ = simclr_file(tmp_path)
    (tmp_path / "cut.torch").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cannot be read with torch.load\(weights_only=True\)"):
        tdann_resnet(tmp_path / "cut.torch")


class Hook:
    """A training-time object that a checkpoint should not hold (weights_only loading refuses it)."""


def test_vissl_file_holding_an_object_names_its_class(tmp_path):
    path, _ = simclr_file(tmp_path)
    content = torch.load(path)
    content["classy_state_dict"]["hooks"] = {"tensorboard": Hook()}
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=r"\(UnpicklingError: Unsupported global: GLOBAL test_peer_files\.Hook "
                                              r"was not an allowed global by default\); expected"):
        tdann_resnet(path)


# --- TopoLM ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "_orig_mod."])
def test_topolm_checkpoint_loads_into_our_gpt(tmp_path, prefix):
    path = save_topolm(tmp_path / "ckpt-499.pt", topolm_state(prefix))
    net = topolm_gpt(path)
    assert (len(net.transformer.h), net.transformer.h[0].attn.n_head, net.lm_head.in_features) == (2, 2, 16)
    loaded = net.state_dict()
    assert loaded.keys() == topolm_state().keys()
    assert all(torch.equal(loaded[k], v) for k, v in topolm_state().items())
    assert net(torch.randint(0, 64, (2, 8))).shape == (2, 8, 64)
    assert read_checkpoint(path)[2] == "topolm"


@pytest.mark.parametrize("variant, message", [
    ("head_loss", r"parameter-free reshape \(head_loss=True\)$"),
    ("attn_proj", r"attn_proj Linear after attention \(attn_proj=True\)$"),
    ("finetune", r"lm_head was replaced \(finetune=True\)$"),
])
def test_topolm_variants_our_gpt_lacks_are_refused(tmp_path, variant, message):
    path = save_topolm(tmp_path / "variant.pt", topolm_state(), **{variant: True})
    with pytest.raises(CheckpointError, match=r"does not fit the project's GPT: .*" + message):
        topolm_gpt(path)


def test_topolm_reader_refuses_other_layouts(tmp_path):
    torch.save({"model": topolm_state(), "model_args": {"n_layer": 2, "n_embd": 16}}, tmp_path / "nanogpt.pt")
    with pytest.raises(CheckpointError, match=r"is not a TopoLM checkpoint: it lacks"):
        topolm_gpt(tmp_path / "nanogpt.pt")
    args = {k: v for k, v in TOPOLM_ARGS.items() if k != "n_head"}
    torch.save({"model": topolm_state(), "model_args": args}, tmp_path / "headless.pt")
    with pytest.raises(CheckpointError, match=r"model_args lack n_head$"):
        topolm_gpt(tmp_path / "headless.pt")
    state = topolm_state()
    state.pop("transformer.h.1.mlp.c_fc.weight")
    with pytest.raises(CheckpointError, match=r"missing: transformer\.h\.1\.mlp\.c_fc\.weight"):
        topolm_gpt(save_topolm(tmp_path / "short.pt", state))
