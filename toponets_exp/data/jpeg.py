"""The images of a prepared split as JPEG bytes: re-encoded with the longer side capped, decoded to RGB tensors."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg


def capped_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is `max_side`, or unchanged if it is not longer."""
    scale = max_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_image(path: str, max_side: int, quality: int) -> bytes:
    """An image file as JPEG bytes whose longer side is at most `max_side`.

    A JPEG (RGB or grayscale) that already fits is kept byte for byte; any other image is converted to RGB,
    downscaled with Lanczos filtering if too large, and encoded at `quality`.
    """
    with Image.open(path) as image:
        size = capped_size(*image.size, max_side)
        if image.format == "JPEG" and image.mode in ("RGB", "L") and size == image.size:
            return Path(path).read_bytes()
        rgb = image.convert("RGB")
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def decode_image(data: bytes | memoryview) -> torch.Tensor:
    """JPEG bytes as an RGB uint8 (3, H, W) tensor (libjpeg-turbo: the pixels PIL decodes)."""
    return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
