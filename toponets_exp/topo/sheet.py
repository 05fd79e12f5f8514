"""Cortical-sheet geometry: where each output unit of a layer sits on the 2-D sheet."""

from __future__ import annotations

import math

import torch


def sheet_shape(n: int) -> tuple[int, int]:
    """Sheet (H, W) for n units: H the largest divisor of n not above sqrt(n), W = n // H."""
    if n < 1:
        raise ValueError(f"a sheet needs at least one unit, got n={n}")
    h = math.isqrt(n)
    while n % h:
        h -= 1
    return h, n // h


def unit_matrix(weight: torch.Tensor, unit_dim: int = 0) -> torch.Tensor:
    """Weight as (units, fan-in): unit i is row i, its incoming weights flattened (conv: in·kh·kw)."""
    if weight.ndim < 2:
        raise ValueError(f"a sheet needs a weight with >= 2 dims (units, ...), got shape {tuple(weight.shape)}")
    if unit_dim != 0:
        weight = weight.movedim(unit_dim, 0)
    return weight.reshape(weight.shape[0], -1)
