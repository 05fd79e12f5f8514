"""TDANN's spatial correlation loss on a layer's responses (Margalit et al., Neuron 2024).

Definition (the paper's relative spatial loss, as its code computes it in neuroailab/TDANN
`spacetorch/losses/losses_torch.py::spatial_correlation_loss`): a layer's units sit on the same H×W sheet as
TopoLoss's weights (`sheet_shape(units)`, unit i at row i // W, column i % W, spacing 1). For one neighbourhood
of k units, r holds the Pearson correlations of the units' responses across the samples of the batch and
D = 1 / (d + 1) the inverse Euclidean sheet distances, both over the k(k − 1)/2 unit pairs i < j; the
neighbourhood's loss is (1 − Corr(r, D)) / 2, and the loss is the mean over the step's neighbourhoods.

Where this follows the reference rather than the plain wording, or differs from it:

- Scaling: (1 − Corr) / 2, in [0, 1], as in `losses_torch.py::spatial_correlation_loss` and
  `losses_numpy.py::pearson_scl`; the unscaled 1 − Corr(r, D) is twice this.
- Pairs: the strict upper triangle of the pairwise matrices; TDANN takes the strict lower one
  (`spacetorch/utils/torch_utils.py::lower_tri`), the same pairs of a symmetric matrix.
- Distance: Euclidean, D = 1 / (d + 1) (`torch_utils.py::pdist` with p=2).
- r is clamped to [−1, 1], as TDANN's `torch_utils.py::corrcoef` does.
- Neighbourhoods: TDANN's `spacetorch/utils/spatial_utils.py::precompute_neighborhoods` draws continuous centres
  uniformly in [min + r, max − r] on each axis and keeps the units inside the square [c − r, c + r]² (a window of
  width 2r, `scripts/save_retinotopic_positions.py` passes r = width / 2); it draws 20,000 of them before
  training, trims them by random subsampling to one common size (`collapse_and_trim_neighborhoods`), and
  `losses_torch.py::spatial_loss_batch` picks `neighborhoods_per_batch` of that pool per step with replacement.
  Here the same square window (|Δrow| <= r and |Δcolumn| <= r, bounds included, not a Euclidean disc) is centred
  on a unit, so on the integer sheet it is always the (2⌊r⌋ + 1)² block around that unit, lying inside the
  sheet: every neighbourhood has the same size with no trimming, and `count` fresh ones are drawn per call (with
  replacement) from the caller's generator instead of from a fixed pool.
- Units and samples: TDANN gives every (channel, x, y) of a conv output its own sheet position
  (`spatial_utils.py::place_conv`, channels scattered within one patch per location) and correlates across the
  batch's images. Here a unit is an output channel or feature, on the sheet TopoLoss uses for the weights, and a
  conv map's locations are extra samples (`conv="locations"`, the default) or averaged away (`conv="pooled"`).
- TopoLM (Rathi et al. 2025, epflneuroailab/topolm @ 46b5653, `models/positions.py::local_spatial_loss` and
  `spatial_loss_fn`) trains the same form: 0.5 · (1 − Corr(r, 1/(1 + d))) over the lower-triangle pairs, d the
  Euclidean distance (`p_norm(positions, 2)`), averaged over `neighborhoods_per_batch` neighbourhoods per batch.
  Its neighbourhoods are L∞ balls, `p_norm(.., 'inf') < radius` around units away from the edges: TopoLM's radius
  R is the window of half-width R − 1 here. `distance` (euclidean | manhattan | chebyshev: the p-norm 2, 1, ∞ of d)
  and `scale` (0.5; 1 for the unscaled 1 − Corr of TopoLM's NumPy guide and TDANN's paper) are options, and
  `positions` places units off the grid (TopoLM shuffles them before training).
- Constant units: TDANN's `corrcoef` sets a zero standard deviation to 1, so a unit whose centred responses are
  exactly zero correlates 0 with every unit, but its gradient through `pow(d, 0.5)` at 0 is NaN. Here a unit whose
  responses are all equal (e.g. a dead ReLU; tested by equality, so a constant nonzero unit whose computed mean is
  off by rounding is caught too) correlates 0 with every unit and gets a zero gradient; likewise a neighbourhood
  whose r is the same for every pair has Corr(r, D) = 0 (TDANN's `pearsonr` divides 0 by 0 there): a loss of 1/2.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from toponets_exp.errors import ConfigError

Conv = Literal["locations", "pooled"]
CONV_MODES: tuple[str, ...] = ("locations", "pooled")
DISTANCES: tuple[str, ...] = ("euclidean", "manhattan", "chebyshev")  # the p-norms 2, 1 and ∞ of a position pair
MIN_UNITS = 3  # fewest units whose pairs (3) can have a correlation with their distances


def unit_responses(output: torch.Tensor, unit_dim: int = -1, conv: Conv = "locations") -> torch.Tensor:
    """A layer output as (samples, units): axes before `unit_dim` are samples, axes after it are locations.

    Linear and LM outputs (..., units) keep every leading position as a sample (each token of (B, T, C)). A conv
    map (B, C, H, W) with unit_dim=1 gives (B·H·W, C) with `conv="locations"` (every image and location is a
    sample: a channel applies one filter at every location, and B·H·W samples give steadier correlations than
    B images) or (B, C) with `conv="pooled"` (the spatial mean per image). The dtype is kept.
    """
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"a layer output must be a tensor with a unit axis, got a {type(output).__name__}; "
                         "pass the tensor that holds the layer's units")
    if output.ndim < 2:
        raise ValueError(f"a layer output needs a sample axis and a unit axis, got shape {tuple(output.shape)}")
    if not -output.ndim <= unit_dim < output.ndim:
        raise ValueError(f"unit_dim={unit_dim} is not an axis of an output of shape {tuple(output.shape)}")
    if conv not in CONV_MODES:
        raise ValueError(f"conv={conv!r} is not a response mode; accepted: {', '.join(CONV_MODES)}")
    dim = unit_dim % output.ndim
    units = output.shape[dim]
    if conv == "pooled" and dim < output.ndim - 1:
        output = output.mean(dim=tuple(range(dim + 1, output.ndim)))
    return output.movedim(dim, -1).reshape(-1, units)


def sample_neighbourhoods(sheet: tuple[int, int], count: int, radius: float, generator: torch.Generator,
                          device: torch.device | str | None = None) -> torch.Tensor:
    """`count` square windows of half-width `radius` centred on random units, as a (count, k) index tensor.

    A window holds the units within `radius` of its centre on both sheet axes: the (2⌊radius⌋ + 1)² block around
    a centre drawn uniformly among the units whose block lies inside the sheet, listed row-major (the centre is
    column k // 2). The draws come from `generator` (on its device); the result is moved to `device`, by default
    the generator's.
    """
    h, w = _sheet(sheet)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"count={count!r} neighbourhoods: accepted: an integer >= 1")
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not math.isfinite(radius):
        raise ConfigError(f"radius={radius!r}: accepted: a finite number >= 1 (in sheet units)")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    half = math.floor(radius)
    if half < 1:
        raise ConfigError(f"radius={radius} gives a neighbourhood of fewer than {MIN_UNITS} units "
                          "(a lone centre, or none, below radius 1); accepted: radius >= 1")
    side = 2 * half + 1
    if side > min(h, w):
        largest = (min(h, w) - 1) // 2 + 1
        accepted = f"1 <= radius < {largest}" if largest > 1 else "none: both sheet sides must be >= 3"
        raise ConfigError(f"radius={radius} needs a {side}x{side} window, larger than the {h}x{w} sheet; "
                          f"accepted: {accepted}")
    at = generator.device
    rows = torch.randint(half, h - half, (count,), generator=generator, device=at)
    cols = torch.randint(half, w - half, (count,), generator=generator, device=at)
    steps = torch.arange(-half, half + 1, device=at)
    block = (steps[:, None] * w + steps[None, :]).reshape(-1)
    return ((rows * w + cols)[:, None] + block).to(at if device is None else device)


def pair_distances(first: torch.Tensor, second: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """The `distance` (euclidean | manhattan | chebyshev) between positions (..., 2) `first` and `second`."""
    diff = first - second
    if distance == "euclidean":
        return torch.hypot(diff[..., 0], diff[..., 1])
    if distance == "manhattan":
        return diff.abs().sum(dim=-1)
    if distance == "chebyshev":
        return diff.abs().amax(dim=-1)
    raise ValueError(f"distance={distance!r} is not supported; accepted: {', '.join(DISTANCES)}")


def unit_positions(units: torch.Tensor, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(..., 2) (row, column) of unit indices on a sheet `width` units wide: unit i at (i // W, i % W)."""
    return torch.stack([units // width, units % width], dim=-1).to(dtype)


def grid_positions(sheet: tuple[int, int], device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(units, 2) (row, column) of every unit of an H×W sheet, row-major: unit i at (i // W, i % W)."""
    h, w = _sheet(sheet)
    return unit_positions(torch.arange(h * w, device=device), w, dtype)


def spatial_correlation_loss(responses: torch.Tensor, sheet: tuple[int, int], neighbourhoods: torch.Tensor,
                             distance: str = "euclidean", scale: float = 0.5,
                             positions: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over neighbourhoods of scale · (1 − Corr(r, D)) for responses (samples, units) on the H×W sheet.

    `neighbourhoods` is a (count, k) integer tensor of distinct unit indices in [0, units), k >= 3 (e.g. from
    `sample_neighbourhoods`). D = 1 / (1 + d), d the `distance` between the units' `positions` ((units, 2);
    by default the sheet's grid, `grid_positions`). The result is a differentiable scalar in float32, or float64
    for float64 responses. All neighbourhoods are computed at once; a (units, units) covariance is formed only
    when it is no larger than the neighbourhoods' own (count, k, k) ones.
    """
    if not isinstance(responses, torch.Tensor) or responses.ndim != 2:
        shape = tuple(responses.shape) if isinstance(responses, torch.Tensor) else type(responses).__name__
        raise ValueError(f"responses must be a (samples, units) tensor, got {shape}")
    h, w = _sheet(sheet)
    samples, units = responses.shape
    if units != h * w:
        raise ValueError(f"responses have {units} units but the {h}x{w} sheet has {h * w}")
    if samples < 2:
        raise ValueError(f"correlations across samples need at least 2 samples, got {samples}")
    if not isinstance(neighbourhoods, torch.Tensor) or neighbourhoods.dtype.is_floating_point \
            or neighbourhoods.dtype.is_complex or neighbourhoods.dtype == torch.bool:
        raise TypeError("neighbourhoods must be an integer tensor of unit indices")
    if neighbourhoods.ndim != 2 or neighbourhoods.shape[0] < 1 or neighbourhoods.shape[1] < MIN_UNITS:
        raise ValueError(f"neighbourhoods must be (count >= 1, k >= {MIN_UNITS}) unit indices, "
                         f"got shape {tuple(neighbourhoods.shape)}")
    dtype = torch.float64 if responses.dtype == torch.float64 else torch.float32
    x = responses.to(dtype)
    idx = neighbourhoods.to(device=x.device, dtype=torch.long)
    count, k = idx.shape
    first, second = torch.triu_indices(k, k, 1, device=x.device)
    if units * units <= count * k * k:
        # a small layer: its full covariance matrix is no bigger than the neighbourhoods' (count, k, k) ones
        covariance, inv_std = _covariance(x)
        i, j = idx[:, first], idx[:, second]
        r = covariance[i, j] * inv_std[i] * inv_std[j]
    else:
        covariance, inv_std = _covariance(x.index_select(1, idx.reshape(-1)).view(samples, count, k))
        r = covariance[:, first, second] * inv_std[:, first] * inv_std[:, second]
    r = r.clamp(-1.0, 1.0)
    if positions is None:  # the sheet's grid, at the neighbourhoods' units only
        at = unit_positions(idx, w, dtype)
    elif tuple(positions.shape) != (units, 2):
        raise ValueError(f"positions must be (units, 2) = ({units}, 2), got {tuple(positions.shape)}")
    else:
        at = positions.to(device=x.device, dtype=dtype)[idx]
    d = pair_distances(at[:, first], at[:, second], distance)
    alignment = (_standardised(r, dim=1) * _standardised(1.0 / (d + 1.0), dim=1)).sum(dim=1)
    return (scale * (1.0 - alignment)).mean()


def _sheet(sheet: tuple[int, int]) -> tuple[int, int]:
    """A validated (H, W) sheet."""
    if (not isinstance(sheet, (tuple, list)) or len(sheet) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sheet)):
        raise ValueError(f"sheet must be (H, W) with positive integer sides, got {sheet!r}")
    return int(sheet[0]), int(sheet[1])


def _covariance(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised covariances of x's columns over its first axis, and each column's 1 / std (0 if constant).

    x is (samples, units) or (samples, count, k), giving (units, units) and (units,) or (count, k, k) and
    (count, k); covariance · scale_i · scale_j is the Pearson correlation, 0 for a constant column.
    """
    centred = x - x.mean(dim=0, keepdim=True)
    if x.ndim == 2:
        covariance = centred.T @ centred
    else:
        covariance = torch.einsum("snk,snl->nkl", centred, centred)
    variance = covariance.diagonal(dim1=-2, dim2=-1)
    flat = (x.detach() == x.detach()[:1]).all(dim=0) | (variance.detach() == 0)
    return covariance, torch.where(flat, 0.0, torch.where(flat, 1.0, variance).rsqrt())


def _standardised(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x centred and scaled to unit Euclidean norm along `dim`, so dot products are Pearson correlations.

    A slice whose values are all equal becomes 0, with a zero gradient.
    """
    centred = x - x.mean(dim=dim, keepdim=True)
    squares = centred.square().sum(dim=dim, keepdim=True)
    values = x.detach()
    flat = (values.amax(dim=dim, keepdim=True) == values.amin(dim=dim, keepdim=True)) | (squares.detach() == 0)
    return torch.where(flat, 0.0, centred * torch.where(flat, 1.0, squares).rsqrt())
