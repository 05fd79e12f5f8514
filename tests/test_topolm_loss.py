"""TopoLM's spatial loss (epflneuroailab/topolm @ 46b5653, models/positions.py) as options of the spatial
correlation loss: equal to a re-derivation written from TopoLM's code on the same responses, positions and
neighbourhoods, for each of its distance norms."""

import itertools

import numpy as np
import pytest
import torch

from toponets_exp.topo.spatial_correlation import pair_distances, spatial_correlation_loss

NORMS = {1: "manhattan", 2: "euclidean", "inf": "chebyshev"}


def topolm_p_norm(positions: torch.Tensor, p) -> torch.Tensor:
    """TopoLM's p_norm: the (N, N) distances between rows of positions for p in 1, 2, 'inf'."""
    diff = positions[:, None, :] - positions[None, :, :]
    if p == 1:
        return diff.abs().sum(-1)
    if p == 2:
        return diff.square().sum(-1).sqrt()
    return diff.abs().max(-1)[0]


def topolm_local_loss(activations: torch.Tensor, positions: torch.Tensor, p=2, half: bool = True) -> torch.Tensor:
    """TopoLM's local_spatial_loss (p = 2 there; `half`=False: its NumPy guide's 1 - corr): torch.corrcoef of the
    responses and of (r, D) over the strict lower triangle, D = 1 / (1 + p_norm)."""
    n = activations.shape[1]
    idx = np.tril_indices(n, k=-1)
    distances = 1 / (1 + topolm_p_norm(positions, p))
    r = torch.corrcoef(activations.T)
    loss = 1 - torch.corrcoef(torch.stack([r[idx], distances[idx]], dim=0))[0, 1]
    return 0.5 * loss if half else loss


def topolm_neighbourhoods(coordinates: torch.Tensor, side: int, radius: int) -> torch.Tensor:
    """TopoLM's init_pos.py neighbourhoods: an L-inf ball `distance < radius` around each unit whose coordinates
    lie in [radius - 1, side - radius] on both axes, as a (M, N) 0/1 mask."""
    inner = ((coordinates >= radius - 1) & (coordinates <= side - radius)).all(dim=1)
    distances = topolm_p_norm(coordinates, "inf")
    return torch.stack([distances[c] < radius for c in torch.nonzero(inner).flatten()]).to(torch.int64)


@pytest.mark.parametrize("p", [2, 1, "inf"])
@pytest.mark.parametrize("half", [True, False])
def test_equal_to_topolm_on_shuffled_positions(p, half):
    side, radius, samples = 12, 3, 40
    g = torch.Generator().manual_seed(0)
    grid = torch.tensor(list(itertools.product(range(side), repeat=2)), dtype=torch.float64)
    coordinates = grid[torch.randperm(side * side, generator=g)]  # TopoLM's positions before swap optimisation
    masks = topolm_neighbourhoods(coordinates, side, radius)
    chosen = torch.randperm(len(masks), generator=g)[:5]  # spatial_loss_fn: neighborhoods_per_batch of them
    responses = torch.randn(samples, side * side, generator=g, dtype=torch.float64)
    responses = responses + 0.5 * responses.roll(1, dims=1)  # some correlation structure
    expected = torch.stack([topolm_local_loss(responses[:, m.bool()], coordinates[m.bool()], p, half)
                            for m in masks[chosen]]).mean()
    hoods = torch.stack([torch.nonzero(m).flatten() for m in masks[chosen]])  # every ball has (2R - 1)^2 units
    ours = spatial_correlation_loss(responses, (side, side), hoods, distance=NORMS[p], scale=0.5 if half else 1.0,
                                    positions=coordinates)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=0)


def test_grid_positions_are_the_default_and_the_windows_are_topolm_balls():
    """On the unshuffled grid TopoLM's ball of radius R is the window of half-width R - 1 centred on a unit."""
    side, radius = 9, 3
    grid = torch.tensor(list(itertools.product(range(side), repeat=2)), dtype=torch.float64)
    masks = topolm_neighbourhoods(grid, side, radius)
    centre = 4 * side + 5
    window = torch.tensor([r * side + c for r in range(2, 7) for c in range(3, 8)])
    assert any(torch.equal(torch.nonzero(m).flatten(), window) for m in masks)
    responses = torch.randn(30, side * side, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hoods = window[None]
    torch.testing.assert_close(spatial_correlation_loss(responses, (side, side), hoods),
                               spatial_correlation_loss(responses, (side, side), hoods, positions=grid))
    assert centre in window.tolist()


def test_pair_distances():
    a, b = torch.tensor([[0.0, 0.0], [1.0, 2.0]]), torch.tensor([[3.0, 4.0], [1.0, -1.0]])
    assert pair_distances(a, b, "euclidean").tolist() == [5.0, 3.0]
    assert pair_distances(a, b, "manhattan").tolist() == [7.0, 3.0]
    assert pair_distances(a, b, "chebyshev").tolist() == [4.0, 3.0]
    with pytest.raises(ValueError, match="distance='l3' is not supported"):
        pair_distances(a, b, "l3")
