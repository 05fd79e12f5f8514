"""Anti-aliased strided convolutions (BlurPool) as in the official TopoNets ResNet checkpoints.

Zhang, "Making convolutional networks shift-invariant again" (ICML 2019), in the arrangement of the FFCV ImageNet
recipe that the TopoNets ResNets were trained with: a fixed [1,2,1]⊗[1,2,1]/16 depthwise blur (stride 1, padding 1)
followed by the original strided convolution. Module and buffer names (`<name>.conv`, `<name>.blur_filter`) match
the published state dicts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def blur_kernel(channels: int) -> torch.Tensor:
    """Depthwise (channels, 1, 3, 3) binomial kernel [1,2,1]ᵀ[1,2,1] / 16."""
    taps = torch.tensor([1.0, 2.0, 1.0])
    return (torch.outer(taps, taps) / 16.0).expand(channels, 1, 3, 3).clone()


class BlurPoolConv2d(nn.Module):
    """A strided Conv2d preceded by a fixed depthwise blur; the conv keeps its own stride."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.register_buffer("blur_filter", blur_kernel(conv.in_channels))

    @property
    def weight(self) -> nn.Parameter:
        """The wrapped conv's weight, so TopoLoss addresses a block conv by one name with or without blur."""
        return self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blurred = F.conv2d(x, self.blur_filter, stride=1, padding=1, groups=self.conv.in_channels)
        return self.conv(blurred)


def needs_blur(module: nn.Module, min_channels: int = 16) -> bool:
    """Whether a module is a strided Conv2d with at least `min_channels` inputs (the official rule)."""
    return isinstance(module, nn.Conv2d) and max(module.stride) > 1 and module.in_channels >= min_channels


def apply_blurpool(net: nn.Module, min_channels: int = 16) -> nn.Module:
    """Wrap, in place, every strided Conv2d with >= `min_channels` inputs in a BlurPoolConv2d."""
    for name, child in net.named_children():
        if needs_blur(child, min_channels):
            setattr(net, name, BlurPoolConv2d(child))
        else:
            apply_blurpool(child, min_channels)
    return net
