"""torchvision's colour adjustments of float RGB images in [0, 1], batched with one factor per image: what
torchvision.transforms.v2.functional's adjust_* ops compute for each image and its own factor."""

from __future__ import annotations

import torch


def _per_image(amount: torch.Tensor) -> torch.Tensor:
    """(n,) factors as (n, 1, 1, 1), to scale a batch (n, C, H, W)."""
    return amount.view(-1, 1, 1, 1)


def _blend(images: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """ratio · images + (1 - ratio) · other, in [0, 1] (torchvision's _blend)."""
    r = _per_image(ratio)
    return (images * r + other * (1.0 - r)).clamp(0, 1)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma (n, 1, H, W) of RGB images (F.rgb_to_grayscale)."""
    r, g, b = images.unbind(dim=-3)
    return (r * 0.2989 + g * 0.587 + b * 0.114).unsqueeze(-3)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """F.adjust_brightness of each image by its factor."""
    return (images * _per_image(factor)).clamp(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """F.adjust_contrast of each image by its factor: a blend with the mean of its grayscale."""
    return _blend(images, grayscale(images).mean(dim=(-3, -2, -1), keepdim=True), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """F.adjust_saturation of each image by its factor: a blend with its grayscale."""
    return _blend(images, grayscale(images), factor)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """Hue (in [0, 1)), saturation and value of RGB images, stacked as channels (torchvision's _rgb_to_hsv)."""
    r, g, b = images.unbind(dim=-3)
    maxc, minc = images.amax(dim=-3), images.amin(dim=-3)
    equal = maxc == minc
    chroma = maxc - minc
    ones = torch.ones_like(maxc)
    saturation = chroma / torch.where(equal, ones, maxc)
    divisor = torch.where(equal, ones, chroma)
    rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    hue = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((hue, saturation, maxc), dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """RGB images of hue, saturation and value channels (torchvision's _hsv_to_rgb)."""
    h, s, v = hsv.unbind(dim=-3)
    h6 = h * 6
    sector = torch.floor(h6)
    f = h6 - sector
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * f)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0, 1)
    sector = sector.long().remainder(6)
    candidates = torch.stack((v, p, q, t))  # which of them each channel takes in each of the six hue sectors:
    table = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]], device=hsv.device)
    pick = table[:, sector]  # (3, n, H, W)
    return candidates.gather(0, pick).movedim(0, -3)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """F.adjust_hue of each image by its shift (a fraction of the hue circle, in [-0.5, 0.5])."""
    hsv = rgb_to_hsv(images)
    hue = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.cat((hue[:, None], hsv[:, 1:]), dim=1))
