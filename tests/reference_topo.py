"""Independent NumPy re-derivation of TopoLoss (PyTorch's bilinear, align_corners=False, scale-factor grid)."""

from __future__ import annotations

import numpy as np


def np_sheet_shape(n: int) -> tuple[int, int]:
    """Brute force: the largest divisor of n with d*d <= n."""
    h = max(d for d in range(1, n + 1) if n % d == 0 and d * d <= n)
    return h, n // h


def np_resize_axis(x: np.ndarray, axis: int, out_size: int, coord_scale: float) -> np.ndarray:
    """Linear resampling along one axis: src = (dst + 0.5) * coord_scale - 0.5, clamped at 0 (half-pixel rule)."""
    n_in = x.shape[axis]
    x = np.moveaxis(x, axis, 0)
    out = np.empty((out_size,) + x.shape[1:], dtype=np.float64)
    for dst in range(out_size):
        src = max((dst + 0.5) * coord_scale - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        out[dst] = (1 - lam) * x[i0] + lam * x[i1]
    return np.moveaxis(out, 0, axis)


def np_blur(sheet: np.ndarray, factor_h: float, factor_w: float) -> np.ndarray:
    """Down-sample by scale_factor 1/φ (size floor(n/φ), coordinates scaled by φ), then up to (H, W)."""
    h, w = sheet.shape[:2]
    dh, dw = int(np.floor(h * (1.0 / factor_h))), int(np.floor(w * (1.0 / factor_w)))
    down = np_resize_axis(np_resize_axis(sheet, 0, dh, factor_h), 1, dw, factor_w)
    return np_resize_axis(np_resize_axis(down, 0, h, dh / h), 1, w, dw / w)


def np_layer_loss(weight: np.ndarray, factor_h: float, factor_w: float) -> float:
    """1 - mean cosine between each unit's weight vector and its blurred sheet neighbourhood."""
    n = weight.shape[0]
    h, w = np_sheet_shape(n)
    units = weight.reshape(n, -1).astype(np.float64)
    blurred = np_blur(units.reshape(h, w, -1), factor_h, factor_w).reshape(n, -1)
    cos = (units * blurred).sum(1) / (np.linalg.norm(units, axis=1) * np.linalg.norm(blurred, axis=1))
    return float(1.0 - cos.mean())
