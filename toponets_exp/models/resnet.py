"""torchvision ResNet builders (random init) with a small-input stem and the official BlurPool variant."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from torch import nn
from torchvision import models

from toponets_exp.models.blurpool import apply_blurpool
from toponets_exp.models.checkpoints import load_weights


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
