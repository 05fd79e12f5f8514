"""SimCLR's two augmented views of every image of a batch, every random parameter drawn from a given torch.Generator:
TDANN's augmentations (VISSL's RandomResizedCrop, RandomHorizontalFlip, ImgPilColorDistortion, ImgPilGaussianBlur)
on tensors, batched (a few ops per batch, on the batch's device), so that the views are a function of the
generator's state alone. Each op computes what torchvision's functional op does to one image (tests/test_simclr.py
compares them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from toponets_exp.checks import is_number, must, number
from toponets_exp.errors import ConfigError
from toponets_exp.lit.simclr_color import adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, grayscale


@dataclass(frozen=True)
class ViewSettings:
    """The augmentations of one view, TDANN's by default (SimCLR's: Chen et al. 2020, appendix A)."""

    crop_scale: tuple[float, float] = (0.08, 1.0)   # RandomResizedCrop: area fraction, then aspect ratio
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    color_strength: float = 1.0                     # jitter of brightness, contrast, saturation 0.8 s, hue 0.2 s
    jitter_p: float = 0.8                           # ... applied with this probability, in a random order
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)    # Gaussian blur's standard deviation in pixels (PIL's radius)


def _pair(key: str, value: Any) -> tuple[float, float]:
    """A pair [low, high] of positive numbers with low <= high, as floats."""
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
    ok = ok and all(is_number(v) and math.isfinite(v) and v > 0 for v in value) and value[0] <= value[1]
    return tuple(float(v) for v in must(key, value, ok, "a pair [low, high] of numbers with 0 < low <= high"))


def view_settings(overrides: dict[str, Any] | None, key: str = "model.lit.views") -> ViewSettings:
    """TDANN's settings with `overrides` (keys of ViewSettings), each checked; a ConfigError names a bad key."""
    given = dict(overrides or {})
    names = [f.name for f in fields(ViewSettings)]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"{key} has no {', '.join(unknown)}; its keys are {', '.join(names)}")
    checked: dict[str, Any] = {}
    for name, value in given.items():
        if name.endswith("_p"):
            checked[name] = must(f"{key}.{name}", value, number(f"{key}.{name}", value, 0.0) <= 1, "in [0, 1]")
        elif name == "color_strength":
            checked[name] = number(f"{key}.{name}", value, 0.0)
        else:
            checked[name] = _pair(f"{key}.{name}", value)
    return ViewSettings(**checked)


def stream_seed(*keys: int) -> int:
    """A 63-bit seed for the random stream named by `keys` (e.g. the run's seed and a DDP rank)."""
    return int(np.random.SeedSequence(keys).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


def _uniform(gen: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    """Uniform draws in [low, high) (float64, CPU)."""
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)


def crop_boxes(gen: torch.Generator, n: int, height: int, width: int, scale: tuple[float, float],
               ratio: tuple[float, float]) -> torch.Tensor:
    """(n, 4) long rows (top, left, height, width) of random resized crops: torchvision's
    RandomResizedCrop.get_params (the first of 10 tries of an area fraction and a log-uniform aspect ratio that
    fits, else the central crop within the ratio's bounds), every try drawn whether it is needed or not."""
    target = height * width * _uniform(gen, (n, 10), *scale)
    aspect = torch.exp(_uniform(gen, (n, 10), math.log(ratio[0]), math.log(ratio[1])))
    w, h = torch.round(torch.sqrt(target * aspect)), torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.int8).argmax(1, keepdim=True)
    w, h = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]
    in_ratio = width / height
    fallback = ((width, round(width / min(ratio))) if in_ratio < min(ratio) else
                (round(height * max(ratio)), height) if in_ratio > max(ratio) else (width, height))
    found = fits.any(1)
    w, h = torch.where(found, w, fallback[0]), torch.where(found, h, fallback[1])
    top = torch.where(found, torch.floor(_uniform(gen, (n,), 0, 1) * (height - h + 1)), (height - h) // 2)
    left = torch.where(found, torch.floor(_uniform(gen, (n,), 0, 1) * (width - w + 1)), (width - w) // 2)
    return torch.stack((top, left, h, w), 1).long()


def _axis(start: torch.Tensor, length: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """grid_sample coordinates (align_corners=False) of `size` outputs resampling pixels [start, start + length)
    bilinearly (half-pixel centres, source clamped to the crop: F.resized_crop's), (n, size)."""
    out = torch.arange(size, dtype=torch.float64) + 0.5
    source = start[:, None] + out[None] * (length[:, None] / size) - 0.5
    source = torch.minimum(torch.maximum(source, start[:, None].double()), (start + length - 1)[:, None].double())
    return ((source + 0.5) * 2 / size - 1).to(device=device, dtype=torch.float32)


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Each image's box (top, left, height, width) resized bilinearly to the image's size, mirrored where `flip`:
    F.resized_crop then F.horizontal_flip per image, for boxes no larger than the image (upsampling)."""
    n, _, height, width = images.shape
    ys = _axis(boxes[:, 0], boxes[:, 2], height, images.device)
    xs = _axis(boxes[:, 1], boxes[:, 3], width, images.device)
    xs = torch.where(flip.to(images.device)[:, None], xs.flip(1), xs)
    grid = torch.stack((xs[:, None, :].expand(n, height, width), ys[:, :, None].expand(n, height, width)), -1)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Each image blurred with its own standard deviation, one odd kernel `size` for all (F.gaussian_blur's
    separable kernel and reflected borders)."""
    n, c, height, width = images.shape
    x = torch.linspace(-(size // 2), size // 2, size, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x[None] / sigma[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).to(images).repeat_interleave(c, 0)
    pad = size // 2
    flat = F.pad(images, [pad, pad, pad, pad], mode="reflect").reshape(1, n * c, height + 2 * pad, width + 2 * pad)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * c)
    return F.conv2d(flat, kernel[:, None, None, :], groups=n * c).reshape(n, c, height, width)


def blur_size(settings: ViewSettings, side: int) -> int:
    """The blur kernel: ±3 of the largest sigma, odd, no wider than the image."""
    return min(2 * math.ceil(3 * settings.blur_sigma[1]) + 1, side if side % 2 else side - 1)


def color_distortion(images: torch.Tensor, gen: torch.Generator, settings: ViewSettings) -> torch.Tensor:
    """SimCLR's colour distortion of strength s: with p jitter_p, brightness, contrast and saturation factors in
    [1 - 0.8 s, 1 + 0.8 s] (not below 0) and a hue shift in [-0.2 s, 0.2 s] in a random order per image
    (torchvision's ColorJitter); then with p grayscale_p, grayscale."""
    n, s = images.shape[0], settings.color_strength
    jitter = _uniform(gen, (n,), 0, 1) < settings.jitter_p
    factors = _uniform(gen, (n, 3), max(0.0, 1 - 0.8 * s), 1 + 0.8 * s)
    hue = _uniform(gen, (n,), -min(0.2 * s, 0.5), min(0.2 * s, 0.5))
    order = torch.argsort(torch.rand((n, 4), generator=gen), 1)
    gray = _uniform(gen, (n,), 0, 1) < settings.grayscale_p
    ops = ((adjust_brightness, factors[:, 0]), (adjust_contrast, factors[:, 1]),
           (adjust_saturation, factors[:, 2]), (adjust_hue, hue))
    out = images.clone()
    for step in range(4):
        for which, (op, amount) in enumerate(ops):
            chosen = (jitter & (order[:, step] == which)).nonzero()[:, 0]
            if len(chosen):
                out[chosen] = op(out[chosen], amount[chosen].to(out))
    chosen = gray.nonzero()[:, 0]
    if len(chosen):
        out[chosen] = grayscale(out[chosen]).expand(-1, 3, -1, -1)
    return out


def one_view(pixels: torch.Tensor, gen: torch.Generator, settings: ViewSettings) -> torch.Tensor:
    """One augmented view of each RGB image in [0, 1] of a batch (n, 3, H, W), of the same size."""
    n, _, height, width = pixels.shape
    boxes = crop_boxes(gen, n, height, width, settings.crop_scale, settings.crop_ratio)
    flip = _uniform(gen, (n,), 0, 1) < settings.flip_p
    out = color_distortion(resized_crops(pixels, boxes, flip), gen, settings)
    blur = (_uniform(gen, (n,), 0, 1) < settings.blur_p).nonzero()[:, 0]
    sigma = _uniform(gen, (n,), *settings.blur_sigma)
    if len(blur):
        out[blur] = gaussian_blur(out[blur], sigma[blur], blur_size(settings, min(height, width)))
    return out


def two_views(images: torch.Tensor, gen: torch.Generator, settings: ViewSettings,
              pixel_stats: tuple[Sequence[float], Sequence[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views of each standardised image of a batch (n, C, H, W; C 1 or 3), standardised again with the same
    `pixel_stats` (mean, std): pixels back in [0, 1] and a 1-channel image repeated to RGB, then view 1 of every
    image and view 2 of every image, drawn from `gen` in turn."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images of shape {tuple(images.shape)}: SimCLR's views need (N, 1 or 3, H, W)")
    mean = torch.as_tensor(pixel_stats[0], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(pixel_stats[1], dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    pixels = (images * std + mean).clamp(0, 1).expand(-1, 3, -1, -1).contiguous()
    return tuple((one_view(pixels, gen, settings) - mean) / std for _ in range(2))  # type: ignore[return-value]
