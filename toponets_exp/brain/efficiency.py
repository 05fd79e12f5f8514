"""Parameter efficiency of topographic layers (TopoNets, Sec. 5): the axes of the task-metric curves under L1
pruning and sheet downsampling, and the k×k block pooling of a sheet that downsampling applies to a layer's units."""

from __future__ import annotations

import torch

PRUNING_AXIS = "sparsity: share of each topo layer's weights set to 0 (smallest |w| first)"
DOWNSAMPLING_AXIS = "share of the weights and biases of the (topo layer, next layer) pairs kept"


def block_pool(x: torch.Tensor, axis: int, sheet: tuple[int, int], k: int, mode: str) -> torch.Tensor:
    """Average ("mean") or add ("sum") the k×k blocks of the row-major sheet laid along `axis`."""
    h, w = sheet
    moved = x.movedim(axis, 0)
    blocks = moved.reshape(h // k, k, w // k, k, *moved.shape[1:])
    pooled = blocks.mean(dim=(1, 3)) if mode == "mean" else blocks.sum(dim=(1, 3))
    return pooled.reshape(h * w // (k * k), *moved.shape[1:]).movedim(0, axis)
