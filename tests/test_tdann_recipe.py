"""TDANN's recipe (neuroailab/TDANN @ 80c585d) re-derived here step by step and compared with the project's
implementation: the spatial correlation loss (spacetorch/losses/losses_torch.py, utils/torch_utils.py), the combined
SimCLR + spatial loss (losses/spatial_correlation_simclr_info_nce_loss.py with VISSL's SimclrInfoNCECriterion), the
retinotopic layout (scripts/save_retinotopic_positions.py, utils/spatial_utils.py), swap optimisation
(spacetorch/swapopt.py, losses/losses_numpy.py) and the .npz positions files (models/positions.py).

The re-derivations draw from a seeded np.random.Generator where TDANN draws from NumPy's global RNG, in TDANN's order
(per-anchor offsets, the jitter noise, all neighbourhood x centres, all y centres, the trimming choices)."""

from __future__ import annotations

from functools import lru_cache, partial

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.spatial.distance import pdist as scipy_pdist
from scipy.stats import pearsonr, scoreatpercentile

from toponets_exp.lit import SimCLR
from toponets_exp.models.resnet import tdann_trunk
from toponets_exp.topo import tdann_layout as layout
from toponets_exp.topo.tdann_hooks import TDANNSpatial, picks, tdann_layers
from toponets_exp.topo.tdann_loss import tdann_spatial_loss
from toponets_exp.topo.tdann_swapopt import MAX_UNITS, swap_in_square, swap_layer, swap_optimise
from toponets_exp.topo.unit_positions import TDANNPositions, read_tdann_positions, write_tdann_positions

BLOCKS = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")


# --- re-derivation of TDANN's spatial correlation loss (losses_torch.py, torch_utils.py) ---------------------------

@lru_cache(maxsize=None)
def lower_pairs(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of every pair i > j of k items, one entry per pair."""
    rows, cols = [], []
    for i in range(k):
        for j in range(i):
            rows.append(i)
            cols.append(j)
    return torch.tensor(rows), torch.tensor(cols)


def reference_correlations(units: torch.Tensor) -> torch.Tensor:
    """TDANN's corrcoef of units (k, images): covariance / outer(std, std), a zero std set to 1 (its gradient NaN, as
    pow(0, 0.5) in TDANN), clamped to [-1, 1]."""
    centred = units - units.mean(dim=1, keepdim=True)
    covariance = centred @ centred.T / (units.shape[1] - 1)
    std = torch.diagonal(covariance) ** 0.5
    std = torch.where(std == 0, torch.ones_like(std), std)
    return (covariance / std[None, :] / std[:, None]).clamp(-1.0, 1.0)


def reference_neighbourhood_loss(features: torch.Tensor, positions: torch.Tensor, indices: torch.Tensor,
                                 old: bool) -> torch.Tensor:
    """TDANN's spatial_correlation_loss (old: old_spatial_correlation_loss) on the neighbourhood `indices`."""
    flat = features.reshape(features.shape[0], -1)
    units = flat[:, indices].T
    where = positions[indices]
    rows, cols = lower_pairs(len(indices))
    r = reference_correlations(units)[rows, cols]
    distance = ((where[rows] - where[cols]) ** 2).sum(dim=1).sqrt()
    similarity = 1.0 / (distance + 1.0)
    if old:
        return (r - similarity).abs().mean()
    rm, sm = r - r.mean(), similarity - similarity.mean()
    return (1.0 - rm.dot(sm) / (rm.norm() * sm.norm())) / 2.0


def reference_batch_loss(features: torch.Tensor, positions: torch.Tensor, neighbourhoods: torch.Tensor, runs: int,
                         old: bool) -> tuple[torch.Tensor, list[int]]:
    """TDANN's spatial_loss_batch (mean of `runs` losses, each on a row drawn by torch.randint(P, (1,)) from torch's
    global RNG) and the rows it drew."""
    losses, drawn = [], []
    for _ in range(runs):
        row = int(torch.randint(len(neighbourhoods), (1,)))
        drawn.append(row)
        losses.append(reference_neighbourhood_loss(features, positions, neighbourhoods[row], old))
    return torch.stack(losses).mean(), drawn


def numpy_neighbourhood_loss(features: np.ndarray, positions: np.ndarray, indices: np.ndarray, old: bool) -> float:
    """The same loss value from np.corrcoef (NaN of a constant unit set to 0, as TDANN's std = 1 gives), scipy's
    pdist and scipy.stats.pearsonr."""
    flat = features.reshape(len(features), -1)[:, indices]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(flat.T), nan=0.0)
    r = corr[np.tril_indices(len(indices), k=-1)]
    d = np.zeros((len(indices), len(indices)))
    d[np.triu_indices(len(indices), k=1)] = scipy_pdist(positions[indices])
    d = d + d.T
    similarity = 1.0 / (d[np.tril_indices(len(indices), k=-1)] + 1.0)
    if old:
        return float(np.mean(np.abs(r - similarity)))
    return float((1.0 - pearsonr(r, similarity)[0]) / 2.0)


def loss_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Conv-like features (6 images, 3, 4, 4) float64, 48 unit positions in mm, 10 neighbourhoods of 12 units."""
    rng = np.random.default_rng(seed)
    features = torch.as_tensor(rng.normal(size=(6, 3, 4, 4)))
    positions = torch.as_tensor(rng.uniform(0.0, 3.0, size=(48, 2)))
    hoods = torch.as_tensor(np.stack([np.sort(rng.choice(48, 12, replace=False)) for _ in range(10)]))
    return features, positions, hoods


@pytest.mark.parametrize("old", [False, True])
def test_spatial_loss_and_gradient_equal_tdanns_on_given_rows(old: bool) -> None:
    """tdann_spatial_loss on given rows: TDANN's (old_)spatial_correlation_loss mean over them, value and gradient."""
    features, positions, hoods = loss_case(0)
    rows = torch.tensor([3, 7, 3, 0])
    ours_in = features.clone().requires_grad_(True)
    ours = tdann_spatial_loss(ours_in, positions, hoods[rows], use_old_version=old)
    theirs_in = features.clone().requires_grad_(True)
    theirs = torch.stack([reference_neighbourhood_loss(theirs_in, positions, hoods[row], old) for row in rows]).mean()
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    by_numpy = np.mean([numpy_neighbourhood_loss(features.numpy(), positions.numpy(), hoods[row].numpy(), old)
                        for row in rows])
    assert ours.item() == pytest.approx(by_numpy, rel=1e-12, abs=1e-14)
    (ours_grad,) = torch.autograd.grad(ours, ours_in)
    (theirs_grad,) = torch.autograd.grad(theirs, theirs_in)
    assert theirs_grad.abs().sum() > 0
    torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("old", [False, True])
def test_spatial_loss_batch_with_tdanns_drawn_rows_and_generator_draws(old: bool) -> None:
    """spatial_loss_batch's mean over rows drawn from torch.manual_seed(s) equals ours on those rows, and those rows
    are the ones torch.randint(P, (count,)) draws from a Generator seeded s (one call of count == count calls of 1)."""
    features, positions, hoods = loss_case(1)
    for seed in (0, 5, 123):
        torch.manual_seed(seed)
        theirs, drawn = reference_batch_loss(features, positions, hoods, runs=5, old=old)
        ours = tdann_spatial_loss(features, positions, hoods[torch.tensor(drawn)], use_old_version=old)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
        generated = torch.randint(len(hoods), (5,), generator=torch.Generator().manual_seed(seed))
        assert generated.tolist() == drawn  # what holds: same seed, same rows on the CPU generator


def test_dead_unit_loss_equals_tdanns_and_gradient_is_finite() -> None:
    """A constant unit inside the neighbourhood: our loss equals TDANN's (its correlations 0); TDANN's gradient is NaN,
    ours finite; where it is not at the dead unit, ours equals the gradient of the loss with that unit's correlations
    held at 0 (TDANN's value)."""
    features, positions, hoods = loss_case(2)
    dead = int(hoods[4][5])
    flat = features.reshape(6, -1).clone()
    flat[:, dead] = 0.0  # a ReLU unit silent on every image: zero variance exactly
    features = flat.reshape(features.shape)
    rows = torch.tensor([4])
    for old in (False, True):
        ours_in = features.clone().requires_grad_(True)
        ours = tdann_spatial_loss(ours_in, positions, hoods[rows], use_old_version=old)
        theirs_in = features.clone().requires_grad_(True)
        theirs = reference_neighbourhood_loss(theirs_in, positions, hoods[4], old)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
        assert ours.item() == pytest.approx(numpy_neighbourhood_loss(features.numpy(), positions.numpy(),
                                                                     hoods[4].numpy(), old), rel=1e-12)
        (theirs_grad,) = torch.autograd.grad(theirs, theirs_in)
        assert torch.isnan(theirs_grad).any()  # TDANN: pow(0, 0.5)'s backward
        (ours_grad,) = torch.autograd.grad(ours, ours_in)
        assert torch.isfinite(ours_grad).all()
        # Not asserted: the dead unit's own gradient is finite but NOT zero (through its covariances, its std held
        # at 1), although tdann_loss.py's docstring says such a unit "gets a zero gradient".
        # The live units' gradient: the dead unit's responses detached (its correlations stay 0 whatever they are).
        live = features.clone().requires_grad_(True)
        mask = torch.zeros(features.reshape(6, -1).shape[1], dtype=torch.bool)
        mask[dead] = True
        held = torch.where(mask, live.reshape(6, -1).detach(), live.reshape(6, -1)).reshape(features.shape)
        (live_grad,) = torch.autograd.grad(reference_neighbourhood_loss(held, positions, hoods[4], old), live)
        keep = ~mask
        torch.testing.assert_close(ours_grad.reshape(6, -1)[:, keep], live_grad.reshape(6, -1)[:, keep],
                                   rtol=1e-10, atol=1e-14)


# --- the combined SimCLR + spatial loss (spatial_correlation_simclr_info_nce_loss.py) -----------------------------

def vissl_info_nce(embedding: torch.Tensor, temperature: float) -> torch.Tensor:
    """VISSL's SimclrInfoNCECriterion on one rank, two crops per image stacked crop-major (2N, d), the embedding
    L2-normalised first (TDANN's forward): exp(similarity / T); positive: the other crop of the image; negatives:
    every other row but itself; -mean log(pos / (pos + neg))."""
    z = embedding / embedding.norm(dim=1, keepdim=True)
    count = len(z)
    similarity = torch.exp(z @ z.T / temperature)
    terms = []
    for i in range(count):
        positive = (i + count // 2) % count
        negatives = sum(similarity[i, k] for k in range(count) if k not in (i, positive))
        terms.append(torch.log(similarity[i, positive] / (similarity[i, positive] + negatives)))
    return -torch.stack(terms).mean()


def test_combined_simclr_and_spatial_gradients_equal_tdanns() -> None:
    """TDANNSpatial hooks + SimCLR.views_loss backward give the parameter gradients of TDANN's combined loss
    (VISSL InfoNCE at T=0.1 + Σ 0.25·L_block on the same rows), with positions from retinotopic()."""
    torch.manual_seed(0)
    net = tdann_trunk(18, 0, small_input=True)
    module = SimCLR(net, optimizer=partial(torch.optim.SGD, lr=0.1),
                    pixel_stats=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))).double()
    module.train()
    g = torch.Generator().manual_seed(3)
    view0, view1 = torch.randn(2, 4, 3, 16, 16, generator=g, dtype=torch.float64)
    modules = dict(module.net.named_modules())
    positions = layout.retinotopic(RESNET18_AT_16PX, 18, seed=0, follow_maps=True, count=30)  # seed 7 raises: below
    layers = tdann_layers(module.net, positions, 1.0, {name: 0.25 for name in BLOCKS})
    per_batch, seed, step, batch_idx = 2, 11, 5, 0

    # TDANN's loss, re-derived, on the rows the project draws for this batch.
    outputs = {}
    handles = [modules[name].register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
               for name in BLOCKS]
    z0, z1 = module.projections(view0, view1)
    for handle in handles:
        handle.remove()
    assert {name: tuple(o.shape[1:]) for name, o in outputs.items()} == RESNET18_AT_16PX
    theirs = vissl_info_nce(torch.cat((z0, z1)), 0.1)
    for index, layer in enumerate(layers):
        rows = picks(layer, seed, step, batch_idx, index, per_batch)
        coordinates = torch.from_numpy(layer.positions.coordinates.astype(np.float32)).double()  # TDANN's to_torch
        hoods = torch.from_numpy(layer.positions.neighborhood_indices.astype(int))
        block = torch.stack([reference_neighbourhood_loss(outputs[layer.name], coordinates, hoods[row], False)
                             for row in rows]).mean()
        theirs = theirs + layer.layer_weight * block
    module.zero_grad()
    theirs.backward()
    expected = {name: p.grad.clone() for name, p in module.named_parameters()}

    module.zero_grad()
    spatial = TDANNSpatial(layers, neighborhoods_per_batch=per_batch, seed=seed)
    coefficient = lambda layer: layer.weight * layer.layer_weight  # noqa: E731
    spatial.attach(step, batch_idx, coefficient, lambda: 1.0)
    simclr = module.views_loss(view0, view1)
    simclr.backward()
    spatial.detach()
    assert set(spatial.values) == set(BLOCKS)
    torch.testing.assert_close((simclr + spatial.total(coefficient)).double(), theirs.detach(), rtol=1e-6, atol=0)
    # views_loss takes NT-Xent in float32 (z.float()), the rest runs in float64: hence rtol 1e-4 (seen: 2e-6)
    for name, p in module.named_parameters():
        scale = float(expected[name].abs().max())
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-5 * scale, msg=name)


# --- retinotopic layout (save_retinotopic_positions.py, spatial_utils.py) ------------------------------------------

def tdann_rf_centers(side: int, overlap: float, lims: tuple[float, float]) -> tuple[np.ndarray, float]:
    """TDANN's compute_rf_centers."""
    width = np.ptp(lims) / (side - side * overlap + overlap)
    return np.linspace(width / 2.0, np.ptp(lims) - width / 2.0, side), width / 2.0


def tdann_place_conv(dims: tuple[int, int, int], tissue: float, overlap: float,
                     rng: np.random.Generator) -> np.ndarray:
    """TDANN's place_conv(offset_pattern="random", flatten=True): anchor (i, j) at (centre[j], centre[i]), a (C, 2)
    uniform offset per anchor in anchor order, unit c·H·W + a at anchor a + its offset c."""
    channels = dims[0]
    centres, radius = tdann_rf_centers(dims[-1], overlap, (0.0, tissue))
    anchors = [(centres[j], centres[i]) for i in range(len(centres)) for j in range(len(centres))]
    offsets = [rng.uniform(low=-radius, high=radius, size=(channels, 2)) for _ in anchors]
    positions = np.empty((channels * len(anchors), 2))
    for a, (anchor, offset) in enumerate(zip(anchors, offsets)):
        for c in range(channels):
            positions[c * len(anchors) + a] = np.asarray(anchor) + offset[c]
    return positions


def tdann_jitter(positions: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """TDANN's jitter_positions."""
    jittered = positions + rng.normal(loc=0.0, scale=sd, size=positions.shape)
    squished = jittered / (np.ptp(jittered, axis=0) / np.ptp(positions, axis=0))
    return squished - np.min(squished, axis=0) + np.min(positions, axis=0)


def tdann_neighbourhoods(positions: np.ndarray, radius: float, count: int, rng: np.random.Generator) -> list:
    """TDANN's precompute_neighborhoods with indices_within_limits (closed squares, np.where order)."""
    xs = rng.uniform(low=positions[:, 0].min() + radius, high=positions[:, 0].max() - radius, size=(count,))
    ys = rng.uniform(low=positions[:, 1].min() + radius, high=positions[:, 1].max() - radius, size=(count,))
    hoods = []
    for x, y in zip(xs, ys):
        inside = [u for u in range(len(positions))
                  if x - radius <= positions[u, 0] <= x + radius and y - radius <= positions[u, 1] <= y + radius]
        hoods.append(np.array(inside, dtype=np.int64))
    return hoods


def tdann_collapse_and_trim(hoods: list, rng: np.random.Generator) -> np.ndarray:
    """TDANN's collapse_and_trim_neighborhoods(keep_fraction=0.95, min_nb_size=25, keep_limit=500)."""
    sizes = np.array([len(h) for h in hoods])
    n_size = max(int(scoreatpercentile(sizes, (1 - 0.95) * 100)), 25)
    final = np.min([n_size, 500])
    kept = [rng.choice(h, size=(final,), replace=False) for h in hoods if len(h) >= final]
    return np.stack(kept)


TDANN_AREAS = {"layer1.0": "retina", "layer1.1": "retina", "layer2.0": "V1", "layer2.1": "V1", "layer3.0": "V2",
               "layer3.1": "V4", "layer4.0": "VTC", "layer4.1": "VTC"}  # TDANN's layer4 "IT" taken as VTC
TDANN_TISSUE = {"retina": 2.4, "V1": 36.75, "V2": 35.0, "V4": 22.4, "VTC": 70.0}
TDANN_WIDTHS = {"retina": 0.0475, "V1": 1.626, "V2": 3.977, "V4": 2.545, "VTC": 31.818}
SIDES_224 = {"layer1": 56, "layer2": 28, "layer3": 14, "layer4": 7}


def tdann_retinotopic(dims: dict, seed: int, follow_maps: bool, count: int) -> dict:
    """TDANN's save_retinotopic_positions per layer in order (overlap from the first layer's side), with the
    project's documented width rule for follow_maps (× side at 224 px / side, at most the positions' extent)."""
    rng = np.random.default_rng(seed)
    first = next(iter(dims.values()))[-1]
    made = {}
    for name, shape in dims.items():
        area = TDANN_AREAS[name]
        overlap = min(0.1 * first / shape[-1], 1.0)
        coordinates = tdann_jitter(tdann_place_conv(shape, TDANN_TISSUE[area], overlap, rng), 0.3, rng)
        width = TDANN_WIDTHS[area] * (SIDES_224[name.split(".")[0]] / shape[-1] if follow_maps else 1.0)
        width = min(width, float(np.ptp(coordinates, axis=0).min()))
        hoods = tdann_collapse_and_trim(tdann_neighbourhoods(coordinates, width / 2, count, rng), rng)
        made[name] = (coordinates, hoods, width)
    return made


def test_place_units_jitter_neighbourhoods_and_trim_equal_tdanns_draws() -> None:
    """place_units, jitter, neighbourhood_lists and trim equal place_conv("random"), jitter_positions,
    precompute_neighborhoods and collapse_and_trim_neighborhoods drawing from the same Generator in TDANN's order."""
    dims, tissue, overlap = (16, 6, 6), 2.4, 0.3
    ours_rng, theirs_rng = np.random.default_rng(4), np.random.default_rng(4)
    placed = layout.place_units(dims, tissue, overlap, ours_rng)
    expected = tdann_place_conv(dims, tissue, overlap, theirs_rng)
    np.testing.assert_array_equal(placed, expected)
    jittered = layout.jitter(placed, ours_rng)
    np.testing.assert_array_equal(jittered, tdann_jitter(expected, 0.3, theirs_rng))
    hoods = layout.neighbourhood_lists(jittered, 0.6, 60, ours_rng)
    theirs_hoods = tdann_neighbourhoods(jittered, 0.3, 60, theirs_rng)
    assert len(hoods) == len(theirs_hoods) == 60
    for a, b in zip(hoods, theirs_hoods):
        np.testing.assert_array_equal(a, b)
    trimmed = layout.trim(hoods, ours_rng)
    np.testing.assert_array_equal(trimmed, tdann_collapse_and_trim(theirs_hoods, theirs_rng))
    assert trimmed.dtype == np.int64 and trimmed.shape[1] >= 25
    assert ours_rng.random() == theirs_rng.random()  # both generators consumed the same draws


def test_flat_index_is_channel_row_column_with_x_the_column_centre() -> None:
    """Unit c·H·W + i·W + j of place_units sits within the receptive-field radius of (centre[j], centre[i])."""
    channels, side, tissue, overlap = 3, 5, 10.0, 0.2
    centres, radius = layout.rf_centres(side, overlap, tissue)
    expected_centres, expected_radius = tdann_rf_centers(side, overlap, (0.0, tissue))
    np.testing.assert_allclose(centres, expected_centres, rtol=0, atol=1e-12)
    assert radius == pytest.approx(expected_radius, rel=1e-12)
    placed = layout.place_units((channels, side, side), tissue, overlap, np.random.default_rng(0))
    for c in range(channels):
        for i in range(side):
            for j in range(side):
                x, y = placed[c * side * side + i * side + j]
                assert -radius <= x - centres[j] < radius and -radius <= y - centres[i] < radius
    # the column (x) and row (y) anchors differ, so a transposed convention would fail here
    unit = 0 * side * side + 1 * side + 4
    assert abs(placed[unit, 0] - centres[4]) <= radius and abs(placed[unit, 1] - centres[1]) <= radius


@pytest.mark.parametrize("follow_maps, dims", [
    (True, {"layer1.0": (64, 8, 8), "layer2.0": (32, 4, 4), "layer3.0": (16, 2, 2), "layer4.1": (32, 2, 2)}),
    (False, {"layer3.0": (64, 6, 6), "layer3.1": (64, 6, 6), "layer4.0": (64, 3, 3)}),
])
def test_retinotopic_equals_tdanns_script(follow_maps: bool, dims: dict) -> None:
    """retinotopic() equals save_retinotopic_positions re-derived: coordinates, neighbourhoods and widths per layer."""
    ours = layout.retinotopic(dims, 18, seed=9, follow_maps=follow_maps, count=80)
    theirs = tdann_retinotopic(dims, seed=9, follow_maps=follow_maps, count=80)
    assert list(ours) == list(dims)
    for name, (coordinates, hoods, width) in theirs.items():
        layer = ours[name]
        assert isinstance(layer, TDANNPositions) and layer.name == name and layer.dims == dims[name]
        np.testing.assert_array_equal(layer.coordinates, coordinates)
        np.testing.assert_array_equal(layer.neighborhood_indices, hoods)
        assert layer.neighborhood_width == width
        if not follow_maps:
            assert width == TDANN_WIDTHS[TDANN_AREAS[name]]  # TDANN's own widths, uncapped here


RESNET18_AT_16PX = {"layer1.0": (64, 16, 16), "layer1.1": (64, 16, 16), "layer2.0": (128, 8, 8),
                    "layer2.1": (128, 8, 8), "layer3.0": (256, 4, 4), "layer3.1": (256, 4, 4),
                    "layer4.0": (512, 2, 2), "layer4.1": (512, 2, 2)}


def test_retinotopic_with_a_width_capped_at_the_extent_draws_its_neighbourhoods() -> None:
    """retinotopic() of a ResNet-18 on 16 px inputs, layer4's VTC width capped at the positions' extent (where the
    centres' range is a point, up to rounding), for 30 seeds."""
    for seed in range(30):
        layers = layout.retinotopic(RESNET18_AT_16PX, 18, seed=seed, follow_maps=True, count=30)
        assert layers["layer4.1"].neighborhood_indices.shape == (30, 500)


def test_swapping_with_a_width_capped_at_the_extent_starts_its_squares_inside() -> None:
    """swap_layer on layer4.1 of a ResNet-18 at 16 px (its square as wide as the positions' extent on one axis) for
    30 seeds: every square starts inside the positions, swaps are tried, the positions stay a permutation."""
    for seed in range(30):
        layer = layout.retinotopic({"layer4.1": RESNET18_AT_16PX["layer4.1"]}, 18, seed=seed, count=30)["layer4.1"]
        features = np.random.default_rng(seed).standard_normal((20, len(layer.coordinates)))
        swapped, kept = swap_layer(layer, features, 100, 100, np.random.default_rng(seed), count=30)
        assert kept > 0 and swapped.neighborhood_indices.shape == (30, 500)
        assert np.array_equal(np.sort(swapped.coordinates, axis=0), np.sort(layer.coordinates, axis=0))


# --- swap optimisation (swapopt.py, losses_numpy.py) ---------------------------------------------------------------

def tdann_pair_loss(correlations: np.ndarray, positions: np.ndarray, pair: np.ndarray) -> float:
    """TDANN's swapopt_spatial_loss_wrapper with pearson_scl."""
    distances = cdist(positions[pair], positions).ravel()
    return (1 - pearsonr(correlations[pair, :].ravel(), 1.0 / (distances + 1))[0]) / 2


def tdann_swap_positions(features: np.ndarray, positions: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    """TDANN's swap_optimize_positions (RNG seeded RNG_SEED = 424 at every call)."""
    rng = np.random.default_rng(seed=424)
    correlations = np.corrcoef(features.T)
    correlations = np.where(np.isnan(correlations), np.zeros_like(correlations), correlations)
    swaps = 0
    for _ in range(steps):
        pair = rng.choice(np.arange(positions.shape[0]), size=(2,), replace=False)
        before = tdann_pair_loss(correlations, positions, pair)
        positions[[pair[0], pair[1]]] = positions[[pair[1], pair[0]]]
        after = tdann_pair_loss(correlations, positions, pair)
        if after >= before:
            positions[[pair[0], pair[1]]] = positions[[pair[1], pair[0]]]
        else:
            swaps += 1
    return positions, swaps


def tdann_swap_neighbourhoods(features: np.ndarray, positions: np.ndarray, steps: int, per_square: int,
                              width: float) -> tuple[np.ndarray, int, list[int]]:
    """TDANN's swap_optimize_neighborhoods (squares below 500 units; the sizes of the squares seen returned)."""
    positions = positions.copy()
    rng = np.random.default_rng(seed=424)
    swaps, sizes = 0, []
    for _ in range(int(np.ceil(steps / per_square))):
        x0 = rng.uniform(low=np.min(positions[:, 0]), high=np.max(positions[:, 0]) - width)
        y0 = rng.uniform(low=np.min(positions[:, 1]), high=np.max(positions[:, 1]) - width)
        indices = np.array([u for u in range(len(positions)) if x0 <= positions[u, 0] <= x0 + width
                            and y0 <= positions[u, 1] <= y0 + width], dtype=np.int64)
        sizes.append(len(indices))
        if len(indices) < 5:
            continue
        assert len(indices) < 500  # TDANN's line for >= 500 calls np.rng.choice, which does not exist
        moved, kept = tdann_swap_positions(features[:, indices], np.copy(positions[indices, :]), per_square)
        positions[indices] = moved
        swaps += kept
    return positions, swaps, sizes


def swap_case() -> tuple[np.ndarray, np.ndarray]:
    """Responses (24 images, 300 units) with one constant unit, positions uniform in a 10 mm square."""
    rng = np.random.default_rng(8)
    features = rng.normal(size=(24, 300)) + rng.normal(size=(24, 1)) * rng.uniform(0, 1, size=300)
    features[:, 17] = 1.5
    return features, rng.uniform(0.0, 10.0, size=(300, 2))


def test_swap_in_square_equals_tdanns_swap_optimize_positions() -> None:
    """swap_in_square: the positions and swap count of swap_optimize_positions (scipy pearsonr, cdist)."""
    features, positions = swap_case()
    square = np.arange(0, 300, 7)
    ours, kept = swap_in_square(features[:, square], positions[square], 400)
    theirs, swaps = tdann_swap_positions(features[:, square], positions[square].copy(), 400)
    assert kept == swaps and 0 < kept < 400
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(np.sort(ours.view("f8,f8"), axis=0), np.sort(positions[square].view("f8,f8"), axis=0))


def test_swap_optimise_equals_tdanns_swap_optimize_neighborhoods() -> None:
    """swap_optimise: the final positions and kept-swap count of swap_optimize_neighborhoods; a permutation of the
    positions (the multiset unchanged); squares of 5-499 units and some skipped below 5."""
    features, positions = swap_case()
    width = 1.6
    sampler = np.random.default_rng(0)
    ours, kept = swap_optimise(features, positions, 3000, 100, width, sampler)
    theirs, swaps, sizes = tdann_swap_neighbourhoods(features, positions, 3000, 100, width)
    assert len(sizes) == 30 and max(sizes) < MAX_UNITS and sum(s >= 5 for s in sizes) >= 20
    assert kept == swaps and kept > 0
    np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(ours, positions)
    as_rows = lambda a: np.sort(np.ascontiguousarray(a).view("f8,f8").ravel())  # noqa: E731
    np.testing.assert_array_equal(as_rows(ours), as_rows(positions))
    assert sampler.random() == np.random.default_rng(0).random()  # no square of 500: the sampler drew nothing


# --- positions files (models/positions.py) -------------------------------------------------------------------------

class TDANNLayerPositions:
    """TDANN's LayerPositions.load for an .npz, re-derived: np.load, name and neighborhood_width via x[()], and
    __post_init__'s check that prod(dims) is the unit count."""

    def __init__(self, path) -> None:
        state = np.load(path)
        scalar = lambda x: x[()]  # noqa: E731
        self.name = scalar(state["name"])
        self.dims = state["dims"]
        self.coordinates = state["coordinates"]
        self.neighborhood_indices = state["neighborhood_indices"]
        self.neighborhood_width = scalar(state["neighborhood_width"])
        assert np.prod(self.dims) == len(self.coordinates), "dims don't match number of units provided"


def test_written_positions_read_back_by_us_and_by_tdanns_loader(tmp_path) -> None:
    """write_tdann_positions: read_tdann_positions gives identical fields; TDANN's .npz loader reads name as a str and
    equal dims, coordinates, neighbourhoods and width; version.txt holds 2 (NetworkPositions' int(readline()))."""
    made = layout.retinotopic({"layer1.0": (32, 4, 4), "layer2.0": (16, 2, 2)}, 18, seed=2, count=50)
    write_tdann_positions(tmp_path, made)
    back = read_tdann_positions(tmp_path)
    assert list(back) == list(made)
    for name, layer in made.items():
        read = back[name]
        assert read.name == layer.name and read.dims == layer.dims
        assert read.neighborhood_width == layer.neighborhood_width
        np.testing.assert_array_equal(read.coordinates, layer.coordinates)
        np.testing.assert_array_equal(read.neighborhood_indices, layer.neighborhood_indices)
        theirs = TDANNLayerPositions(tmp_path / f"{name}.npz")
        assert isinstance(theirs.name, str) and theirs.name == name
        assert tuple(theirs.dims.tolist()) == layer.dims
        assert float(theirs.neighborhood_width) == layer.neighborhood_width
        np.testing.assert_array_equal(theirs.coordinates, layer.coordinates)
        np.testing.assert_array_equal(theirs.neighborhood_indices, layer.neighborhood_indices)
    with open(tmp_path / "version.txt") as stream:
        assert int(stream.readline()) == 2
