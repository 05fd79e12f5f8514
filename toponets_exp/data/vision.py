"""Shared pieces of the image DataModules: ImageNet-style transforms, a transform wrapper, the loader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from toponets_exp.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_CROP_RATIO = 224 / 256  # resize the short side to size / ratio, then center-crop `size`


def check_image_size(key: str, size: int) -> None:
    """An image side length must be a positive integer."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ConfigError(f"{key}={size!r} must be an integer >= 8 (pixels)")


def to_normalized_tensor(mean: tuple[float, ...], std: tuple[float, ...]) -> list[Any]:
    """PIL/array → float tensor in [0, 1] (RGB) → standardised."""
    return [v2.ToImage(), v2.RGB(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


def imagenet_train_transform(size: int) -> v2.Compose:
    """Inception-style RandomResizedCrop (scale 0.08-1) and horizontal flip."""
    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(),
                       *to_normalized_tensor(IMAGENET_MEAN, IMAGENET_STD)])


def imagenet_eval_transform(size: int) -> v2.Compose:
    """Resize the short side to size·256/224, center-crop `size`."""
    return v2.Compose([v2.ToImage(), v2.Resize(round(size / EVAL_CROP_RATIO), antialias=True), v2.CenterCrop(size),
                       *to_normalized_tensor(IMAGENET_MEAN, IMAGENET_STD)])


class Transformed(Dataset):
    """Items (image, label) of `base` with `transform` applied to the image."""

    def __init__(self, base: Any, transform: Callable[[Any], torch.Tensor]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[i]
        return self.transform(image), int(label)

