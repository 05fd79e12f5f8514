"""torchvision ResNet builders (random init) with a small-input stem and the official BlurPool variant, and TDANN's
published ResNets (VISSL checkpoints) as torchvision ResNets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from torch import nn
from torchvision import models

from toponets_exp.errors import CheckpointError
from toponets_exp.models.blurpool import apply_blurpool
from toponets_exp.models.checkpoints import load_weights, match_state, read_checkpoint

DEPTHS = {((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34, ((3, 4, 6, 3), True): 50}  # (blocks, bottleneck)
TORCHVISION = {18: models.resnet18, 34: models.resnet34, 50: models.resnet50}


def _build(arch: Callable[..., models.ResNet], num_classes: int, small_input: bool, blurpool: bool,
           pretrained_path: str | None) -> models.ResNet:
    """A torchvision ResNet, its stem adapted, strided convs blurred, and weights loaded, as asked."""
    net = arch(weights=None, num_classes=num_classes)
    if small_input:  # 3x3/1 stem without max-pool for 8-32 px images
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    if blurpool:
        apply_blurpool(net)
    if pretrained_path is not None:
        load_weights(net, pretrained_path)
    return net


def resnet18(num_classes: int = 1000, small_input: bool = False, blurpool: bool = False,
             pretrained_path: str | None = None) -> models.ResNet:
    """torchvision ResNet-18; `blurpool=True` is the architecture of the official TopoNets checkpoints."""
    return _build(models.resnet18, num_classes, small_input, blurpool, pretrained_path)


def resnet50(num_classes: int = 1000, small_input: bool = False, blurpool: bool = False,
             pretrained_path: str | None = None) -> models.ResNet:
    """torchvision ResNet-50 (v1.5, stride in the 3x3 conv); `blurpool=True` as in the official checkpoints."""
    return _build(models.resnet50, num_classes, small_input, blurpool, pretrained_path)


def architecture(state: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The `resnet18`/`resnet50` arguments a state dict was saved from: class count, stem, BlurPool."""
    stem = state["conv1.weight"].shape
    return {"num_classes": int(state["fc.weight"].shape[0]), "small_input": tuple(stem[2:]) == (3, 3),
            "blurpool": any(key.endswith(".blur_filter") for key in state)}


def resnet_depth(state: Mapping[str, torch.Tensor]) -> int | None:
    """18, 34 or 50: the torchvision ResNet whose blocks a state dict holds; None for any other."""
    blocks = tuple(len({key.split(".")[1] for key in state if key.startswith(f"layer{stage}.")})
                   for stage in (1, 2, 3, 4))
    return DEPTHS.get((blocks, "layer1.0.conv3.weight" in state))


def tdann_trunk(depth: int = 18, num_classes: int = 0, small_input: bool = False) -> models.ResNet:
    """The torchvision ResNet of a TDANN VISSL file: `num_classes` > 0 for a supervised model's classifier, 0 for a
    SimCLR trunk (fc is Identity: the pooled trunk features); `small_input`: the 3x3/1 stem without max-pool of
    `resnet18(small_input=True)`, for images of 8-32 px (not in TDANN's files)."""
    if depth not in TORCHVISION:
        raise ValueError(f"depth={depth!r}: TDANN's trunks are ResNet-{', -'.join(map(str, TORCHVISION))}")
    net = _build(TORCHVISION[depth], max(int(num_classes), 1), small_input, False, None)
    if num_classes == 0:
        net.fc = nn.Identity()
    return net


def tdann_architecture(state: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The `tdann_trunk` arguments of a TDANN state dict: its depth and its classifier's classes (0: none); and
    small_input=True for a trunk of ours with the small-input stem (TDANN's files have ImageNet's)."""
    depth = resnet_depth(state)
    if depth is None:
        raise KeyError("layer1.0.conv1.weight of a ResNet-18, -34 or -50 trunk")
    found = {"depth": depth, "num_classes": int(state["fc.weight"].shape[0]) if "fc.weight" in state else 0}
    return {**found, "small_input": True} if tuple(state["conv1.weight"].shape[2:]) == (3, 3) else found


def tdann_resnet(path: str | Path, depth: int | None = None) -> models.ResNet:
    """A torchvision ResNet with a TDANN VISSL checkpoint's weights (`depth`, when given, must be the file's); fc is
    the supervised classifier the file holds, else Identity (the pooled trunk features, as TDANN's SimCLR models)."""
    source = f"VISSL checkpoint {str(Path(path).expanduser())!r}"
    state, _, _ = read_checkpoint(path, "vissl")
    found = resnet_depth(state)
    if found is None:
        raise CheckpointError(f"{source}: its trunk's blocks are no torchvision ResNet-18, -34 or -50")
    if depth is not None and depth != found:
        raise CheckpointError(f"{source} holds a ResNet-{found} trunk, not the ResNet-{depth} asked for")
    return match_state(tdann_trunk(**tdann_architecture(state, {})), state, source)
