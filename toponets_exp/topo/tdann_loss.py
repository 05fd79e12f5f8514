"""TDANN's spatial correlation loss on every unit of a block's output at its own position (neuroailab/TDANN @ 80c585d
`spacetorch/losses/losses_torch.py`: `SpatialCorrelationLossModule`, `spatial_loss_batch`,
`spatial_correlation_loss`, `old_spatial_correlation_loss`; `spacetorch/utils/torch_utils.py`: `corrcoef`, `pdist`,
`pearsonr`, `lower_tri`).

For one neighbourhood (a row of the layer's precomputed neighbourhood indices), the block output flattened to
(images, C·H·W) is cut to the neighbourhood's units; r is their pairwise response correlation across the images
(np.corrcoef's, a zero standard deviation set to 1, clamped to [-1, 1]) and D = 1 / (1 + d), d their Euclidean
distances in mm, both over the strict lower triangle. The loss is (1 - Pearson(r, D)) / 2 (`use_old_version`:
mean |r - D|, the loss TDANN used until 2020), averaged over `neighborhoods_per_batch` neighbourhoods drawn
uniformly with replacement. The published models' configs (`configs/config/by_training_data/ecoset/
simclr_spatial_resnet18_*.yaml`) train the new version (use_old_version: False), one neighbourhood per batch,
layer weights 0.25; their `old_scl` configs the old one.

Differences: TDANN draws the neighbourhoods from torch's global RNG; here the caller gives them (from the run's seed,
so a resumed run draws the same). A unit whose responses are all equal correlates 0 with every unit, as in TDANN,
and gets a finite gradient through its covariances, its standard deviation held at 1 (TDANN's `pow(variance, 0.5)`
at 0 gives it NaN).
"""

from __future__ import annotations

import torch


def unit_correlations(features: torch.Tensor) -> torch.Tensor:
    """(..., k, k) correlations of the k units of features (..., images, k), as TDANN's corrcoef."""
    centred = features - features.mean(dim=-2, keepdim=True)
    covariance = centred.transpose(-1, -2) @ centred / (features.shape[-2] - 1)
    variance = covariance.diagonal(dim1=-2, dim2=-1)
    varies = variance > 0
    std = torch.where(varies, torch.where(varies, variance, 1.0).sqrt(), 1.0)
    return (covariance / std[..., :, None] / std[..., None, :]).clamp(-1.0, 1.0)


def pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of x and y along the last axis (TDANN's pearsonr)."""
    xm, ym = x - x.mean(dim=-1, keepdim=True), y - y.mean(dim=-1, keepdim=True)
    return (xm * ym).sum(dim=-1) / (xm.norm(dim=-1) * ym.norm(dim=-1))


def tdann_spatial_loss(output: torch.Tensor, coordinates: torch.Tensor, neighbourhoods: torch.Tensor,
                       use_old_version: bool = False) -> torch.Tensor:
    """The mean over `neighbourhoods` ((count, k) unit indices) of TDANN's loss on a block output (images, ...), its
    flat units at `coordinates` (units, 2) mm; float32 maths (float64 for float64 output)."""
    dtype = torch.float64 if output.dtype == torch.float64 else torch.float32
    flat = output.flatten(start_dim=1).to(dtype)
    if flat.shape[1] != len(coordinates):
        raise ValueError(f"an output of {flat.shape[1]} units, positions of {len(coordinates)}")
    if flat.shape[0] < 2:
        raise ValueError(f"correlations across images need at least 2 images, got {flat.shape[0]}")
    idx = neighbourhoods.to(device=flat.device, dtype=torch.long)
    units = flat[:, idx.reshape(-1)].view(flat.shape[0], *idx.shape).movedim(0, 1)  # (count, images, k)
    rows, cols = torch.tril_indices(idx.shape[1], idx.shape[1], offset=-1, device=flat.device)
    r = unit_correlations(units)[:, rows, cols]
    at = coordinates.to(device=flat.device, dtype=dtype)[idx]
    similarity = 1.0 / ((at[:, rows] - at[:, cols]).norm(dim=-1) + 1.0)
    if use_old_version:
        return (r - similarity).abs().mean(dim=-1).mean()
    return ((1.0 - pearson(r, similarity)) / 2.0).mean()
