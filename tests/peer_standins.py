"""Stand-ins for the peers' published files, in their exact layouts: TDANN's VISSL checkpoints and LayerPositions
pickles, TopoLM's checkpoints and position pickles (read from neuroailab/TDANN@80c585d, VISSL@09270ed,
epflneuroailab/topolm@46b5653)."""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import models


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


TOPOLM_ARGS = dict(n_layer=2, n_head=2, n_embed=16, block_size=8, bias=False, vocab_size=64, dropout=0.0,
                   alpha=2.5, position_dir="gpt2-positions-5-5", accum="mean", activation_decay=0, head_loss=False,
                   attn_proj=False, finetune=False, with_resid=True)
BLOCK = {"ln_1.weight": (16,), "attn.c_attn.weight": (48, 16), "attn.c_proj.weight": (16, 16), "ln_2.weight": (16,),
         "mlp.c_fc.weight": (64, 16), "mlp.c_proj.weight": (16, 64)}  # TopoLM's names (models/model.py), bias=False


def topolm_state(prefix: str = "", vocab: int = 64) -> OrderedDict[str, torch.Tensor]:
    """A TopoLM state dict of TOPOLM_ARGS' shapes (`vocab` tokens), wte and lm_head one tensor (TopoLM ties them)."""
    torch.manual_seed(3)
    wte = torch.randn(vocab, 16)
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


@dataclass
class TDANNLayerPositions:
    """The fields of TDANN's LayerPositions (spacetorch/models/positions.py), pickled under its class path."""
    name: str
    dims: Any
    coordinates: np.ndarray
    neighborhood_indices: np.ndarray
    neighborhood_width: float


@dataclass
class TopoLMLayerPositions:
    """The fields of TopoLM's LayerPositions (models/positions.py), pickled under its class path."""
    name: str
    coordinates: torch.Tensor
    neighborhood_indices: torch.Tensor
    neighborhoods_per_batch: int


TDANNLayerPositions.__module__, TDANNLayerPositions.__qualname__ = "spacetorch.models.positions", "LayerPositions"
TopoLMLayerPositions.__module__, TopoLMLayerPositions.__qualname__ = "positions", "LayerPositions"


@pytest.fixture
def authors_classes(monkeypatch):
    """The stand-in classes importable where the authors' classes live, so that pickle.dump accepts them and names
    them as the authors' own files do."""
    for cls in (TDANNLayerPositions, TopoLMLayerPositions):
        module = cls.__module__
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):
            monkeypatch.setitem(sys.modules, ".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
        monkeypatch.setattr(sys.modules[module], "LayerPositions", cls, raising=False)


def tdann_layer(name: str = "layer1.0", dims: tuple[int, ...] = (4, 3, 3), seed: int = 0) -> TDANNLayerPositions:
    """A TDANN layer: coordinates in mm, 5 neighbourhoods of 6 unit indices."""
    rng = np.random.default_rng(seed)
    units = int(np.prod(dims))
    return TDANNLayerPositions(name, dims, rng.uniform(0, 10, (units, 2)),
                               np.stack([rng.choice(units, 6, replace=False) for _ in range(5)]), 1.626)


def save_pkl(record: Any, path: Path) -> Path:
    """`record` pickled as the authors' `save` does (pickle.dump)."""
    with path.open("wb") as stream:
        pickle.dump(record, stream)
    return path


def save_npz(record: TDANNLayerPositions, path: Path) -> Path:
    """`record` as TDANN's `save_np` writes it (np.savez of its fields)."""
    np.savez(path, **vars(record))
    return path


def topolm_layer(name: str, seed: int = 0, per_batch: int = 5) -> TopoLMLayerPositions:
    """A TopoLM layer as init_pos.py makes one: a shuffled 4 x 4 sheet, 4 masks of the 3 x 3 windows."""
    generator = torch.Generator().manual_seed(seed)
    cells = torch.Tensor([(x, y) for x in range(4) for y in range(4)])[torch.randperm(16, generator=generator)]
    masks = torch.stack([((cells - torch.tensor([cx, cy])).abs().max(1).values < 2).to(int)
                         for cx in (1, 2) for cy in (1, 2)])
    return TopoLMLayerPositions(name, cells, masks, per_batch)


RESNET18_AT_32PX = {f"layer{stage}.{block}": (64 * 2 ** (stage - 1), 8 // 2 ** (stage - 1), 8 // 2 ** (stage - 1))
                    for stage in (1, 2, 3, 4) for block in (0, 1)}  # block outputs (C, H, W) of a 32 px image


def tdann_positions(directory: Path, dims: dict[str, tuple[int, int, int]], save: Any = None, spacing: float = 1.0,
                    seed: int = 0) -> Path:
    """A TDANN positions directory: unit (c, h, w) of each layer at its retinotopic place (w, H - 1 - h) · spacing mm
    plus a per-unit jitter within its cell, as TDANN's retinotopic initialisation spreads a layer's channels."""
    directory.mkdir(parents=True, exist_ok=True)
    for k, (name, (c, h, w)) in enumerate(dims.items()):
        rng = np.random.default_rng(seed + k)
        _, rows, cols = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
        xy = np.stack([cols.ravel(), h - 1 - rows.ravel()], axis=1) * spacing
        xy = xy + rng.uniform(-spacing / 2, spacing / 2, xy.shape)
        units = c * h * w
        hoods = np.stack([rng.choice(units, min(6, units), replace=False) for _ in range(5)])
        (save or save_pkl)(TDANNLayerPositions(name, (c, h, w), xy, hoods, 1.626 * spacing),
                           directory / f"{name}{'.npz' if save is save_npz else '.pkl'}")
    return directory
