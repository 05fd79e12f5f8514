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

IMAGES = torch.randn(2, 3, 64, 64)


class SpatialTrunk(nn.Module):
    """TDANN's SpatialResNet18/50 trunk as VISSL saves it (spacetorch/models/trunks/resnet.py): a torchvision ResNet
    as `base_model` and its blocks aliased in `_feature_blocks` (conv1, maxpool, layer1_0 ..., avgpool)."""

    def __init__(self, base: models.ResNet) -> None:
        super().__init__()
        self.base_model = base
        blocks = [(f"layer{stage}_{i}", block) for stage in (1, 2, 3, 4)
                  for i, block in enumerate(getattr(base, f"layer{stage}"))]
        self._feature_blocks = nn.ModuleDict([("conv1", base.conv1), ("maxpool", base.maxpool), *blocks,
                                              ("avgpool", base.avgpool)])


class VisslResNetTrunk(nn.Module):
    """TDANN's VisslResNet (`custom_resnet`) trunk: `_feature_blocks` aliases conv1, bn1, the relu and whole stages."""

    def __init__(self, base: models.ResNet) -> None:
        super().__init__()
        self.base_model = base
        self._feature_blocks = nn.ModuleDict(
            [("conv1", base.conv1), ("bn1", base.bn1), ("conv1_relu", base.relu), ("maxpool", base.maxpool),
             *[(f"layer{stage}", getattr(base, f"layer{stage}")) for stage in (1, 2, 3, 4)],
             ("avgpool", base.avgpool)])


def trained_like(net: models.ResNet) -> models.ResNet:
    """`net` with BatchNorm statistics off their defaults (so a buffer left unloaded shows), in eval mode."""
    torch.manual_seed(7)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.normal_(1.0, 0.1)
    return net.eval()


def save_vissl(path: Path, trunk: dict[str, torch.Tensor], heads: dict[str, torch.Tensor]) -> Path:
    """A checkpoint as VISSL writes it (vissl/hooks/log_hooks.py; classy_state_dict from get_classy_state)."""
    classy = {"train": True, "base_model": {"model": {"trunk": trunk, "heads": heads},
                                            "meta": {"trunk": {}, "heads": []}},
              "meters": [], "optimizer": {"optim": {"state": {}, "param_groups": []}}, "phase_idx": 199,
              "train_phase_idx": 199, "num_updates": 500400, "losses": [6.1, 6.0], "hooks": {}, "loss": {}}
    torch.save({"phase_idx": 199, "iteration": 500400, "loss": {}, "iteration_num": 500400, "train_phase_idx": 199,
                "classy_state_dict": classy}, path)
    return path


def simclr_file(tmp_path: Path) -> tuple[Path, models.ResNet]:
    """A SimCLR SpatialResNet18 checkpoint (fc Identity, projection-MLP heads) and the net it was saved from."""
    torch.manual_seed(0)
    base = trained_like(models.resnet18(weights=None))
    base.fc = nn.Identity()
    heads = {"0.0.clf.0.weight": torch.randn(512, 512), "0.0.clf.0.bias": torch.randn(512),
             "0.1.clf.0.weight": torch.randn(128, 512), "0.1.clf.0.bias": torch.randn(128)}
    return save_vissl(tmp_path / "model_final_checkpoint_phase199.torch", SpatialTrunk(base).state_dict(), heads), base


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

TOPOLM_ARGS = dict(n_layer=2, n_head=2, n_embed=16, block_size=8, bias=False, vocab_size=64, dropout=0.0,
                   alpha=2.5, position_dir="gpt2-positions-5-5", accum="mean", activation_decay=0, head_loss=False,
                   attn_proj=False, finetune=False, with_resid=True)
BLOCK = {"ln_1.weight": (16,), "attn.c_attn.weight": (48, 16), "attn.c_proj.weight": (16, 16), "ln_2.weight": (16,),
         "mlp.c_fc.weight": (64, 16), "mlp.c_proj.weight": (16, 64)}  # TopoLM's names (models/model.py), bias=False


def topolm_state(prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """A TopoLM state dict of TOPOLM_ARGS' shapes, wte and lm_head one tensor (TopoLM ties them)."""
    torch.manual_seed(3)
    wte = torch.randn(64, 16)
    state = OrderedDict([("transformer.wte.weight", wte), ("transformer.wpe.weight", torch.randn(8, 16))])
    state.update({f"transformer.h.{i}.{name}": torch.randn(shape) for i in range(2) for name, shape in BLOCK.items()})
    state.update({"transformer.ln_f.weight": torch.randn(16), "lm_head.weight": wte})
    return OrderedDict((prefix + k, v) for k, v in state.items())


def save_topolm(path: Path, state: dict[str, torch.Tensor], **args) -> Path:
    """A checkpoint as TopoLM's models/train.py writes it."""
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 6e-4, "betas": (0.9, 0.95)}]},
                "model_args": {**TOPOLM_ARGS, **args}, "iter_num": 500, "best_val_loss": torch.tensor(3.4),
                "config": {"radius": 5, "neighborhoods_per_batch": 5, "alpha": 2.5}}, path)
    return path


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
