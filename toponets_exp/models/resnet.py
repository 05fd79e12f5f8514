"""torchvision ResNet builders with a small-input stem option (randomly initialised)."""

from __future__ import annotations

from torch import nn
from torchvision import models


def _adapt(net: models.ResNet, small_input: bool) -> models.ResNet:
    """Swap the 7x7/2 stem and max-pool for a 3x3/1 stem without pooling (for 8-32 px images)."""
    if small_input:
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net


def resnet18(num_classes: int = 1000, small_input: bool = False) -> models.ResNet:
    """torchvision ResNet-18, random init."""
    return _adapt(models.resnet18(weights=None, num_classes=num_classes), small_input)


def resnet50(num_classes: int = 1000, small_input: bool = False) -> models.ResNet:
    """torchvision ResNet-50, random init."""
    return _adapt(models.resnet50(weights=None, num_classes=num_classes), small_input)
