"""Shared pieces of the image DataModules: ImageNet-style transforms, a transform wrapper, the loader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from toponets_exp.checks import integer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_CROP_RATIO = 224 / 256  # resize the short side to size / ratio, then center-crop `size`


def check_image_size(key: str, size: int) -> None:
    """An image side length must be a positive integer."""
    integer(key, size, 8, accepted="an integer >= 8 (pixels)")


def to_normalized_tensor(mean: tuple[float, ...], std: tuple[float, ...]) -> list[Any]:
    """PIL/array → float tensor in [0, 1] (RGB) → standardised."""
    return [v2.ToImage(), v2.RGB(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


def uint8_pixels(image: Image.Image) -> torch.Tensor:
    """A PIL image's pixels as an RGB uint8 (3, H, W) tensor (channels-last in memory), as v2.ToImage + v2.RGB."""
    rgb = image.convert("RGB")
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(rgb.height, rgb.width, 3).permute(2, 0, 1)


def rgb_tensor(image: torch.Tensor) -> torch.Tensor:
    """A uint8 (1 or 3, H, W) tensor as RGB, as v2.RGB."""
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


class Standardise:
    """uint8 (3, H, W) → (x / 255 - mean) / std as one contiguous float32 tensor: a scale and a shift in place (equal to
    v2.ToDtype(scale=True) + v2.Normalize up to float32 rounding, a few 1e-7)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        mean_t, std_t = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
        self.scale = (1 / (255 * std_t)).float().view(-1, 1, 1)
        self.shift = (-mean_t / std_t).float().view(-1, 1, 1)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.to(torch.float32, memory_format=torch.contiguous_format).mul_(self.scale).add_(self.shift)


class ImagenetTrainTransform:
    """Inception-style RandomResizedCrop (scale 0.08-1) and horizontal flip, then ImageNet standardisation: the draws and
    pixels of v2.RandomResizedCrop(antialias=True) + v2.RandomHorizontalFlip on a PIL image or uint8 tensor, with a PIL
    image cropped before its pixels are copied out."""

    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)

    def __init__(self, size: int) -> None:
        self.size, self.standardise = size, Standardise(IMAGENET_MEAN, IMAGENET_STD)

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        top, left, height, width = transforms.RandomResizedCrop.get_params(image, self.scale, self.ratio)
        if isinstance(image, Image.Image):
            crop = uint8_pixels(image.crop((left, top, left + width, top + height)))
        else:
            crop = F.crop_image(rgb_tensor(image), top, left, height, width)
        pixels = F.resize_image(crop, [self.size, self.size], antialias=True)
        if torch.rand(1) < 0.5:
            pixels = F.horizontal_flip_image(pixels)
        return self.standardise(pixels)


class ImagenetEvalTransform:
    """Resize the short side to size·256/224 (bilinear, antialiased), center-crop `size`, ImageNet standardisation:
    the pixels of v2.Resize + v2.CenterCrop on a PIL image or uint8 tensor."""

    def __init__(self, size: int) -> None:
        self.size, self.standardise = size, Standardise(IMAGENET_MEAN, IMAGENET_STD)

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        pixels = uint8_pixels(image) if isinstance(image, Image.Image) else rgb_tensor(image)
        pixels = F.resize_image(pixels, [round(self.size / EVAL_CROP_RATIO)], antialias=True)
        return self.standardise(F.center_crop_image(pixels, [self.size, self.size]))


def imagenet_train_transform(size: int) -> ImagenetTrainTransform:
    """Inception-style RandomResizedCrop (scale 0.08-1) and horizontal flip."""
    return ImagenetTrainTransform(size)


def imagenet_eval_transform(size: int) -> ImagenetEvalTransform:
    """Resize the short side to size·256/224, center-crop `size`."""
    return ImagenetEvalTransform(size)


class Transformed(Dataset):
    """Items (image, label) of `base` with `transform` applied to the image."""

    def __init__(self, base: Any, transform: Callable[[Any], torch.Tensor]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[i]
        return self.transform(image), int(label)

