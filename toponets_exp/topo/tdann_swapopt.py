"""TDANN's swap optimisation of unit positions on a layer's responses (neuroailab/TDANN @ 80c585d
`spacetorch/swapopt.py`: `swap_optimize_neighborhoods`, `swap_optimize_positions`, `Swapper.swap`, with
`spacetorch/losses/losses_numpy.py`: `pearson_scl`, `swapopt_spatial_loss_wrapper`).

Squares of the layer's neighbourhood width are drawn one after another (their corner uniform in [min, max - width]
on x, then y, from a generator seeded 424, TDANN's RNG_SEED); in each, `steps_per_neighbourhood` swaps of two of its
units' positions are tried (the pair drawn by a generator seeded 424 anew in every square, as TDANN's) and a swap is
kept unless it leaves the loss of the pair no lower: (1 - Pearson(r, 1/(1 + d))) / 2 over the pair's rows of the
square's response correlations r (NaN set to 0) and of the distances d to every unit of the square, the pair
included. A square with fewer than 5 units is skipped. After the swaps the neighbourhoods are drawn again on the new
positions (tdann_layout.neighbourhood_lists and trim, 20,000 of them).

Differences: a square of 500 units or more keeps a random 500 of them (TDANN's line for it calls `np.rng.choice`,
which does not exist); the pair loss's Pearson correlation is computed in NumPy (equal to SciPy's `pearsonr` up to
rounding). A `safe_point`, called before each square, may end the run there (a Slurm signal). A square as wide as the
positions' extent on an axis (a capped width, tdann_layout) starts at its minimum, where rounding would put the
range's end below its start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.distance import cdist

from toponets_exp.topo.tdann_layout import NEIGHBOURHOODS, neighbourhood_lists, trim
from toponets_exp.topo.unit_positions import TDANNPositions

RNG_SEED = 424  # spacetorch/constants.py
MIN_UNITS, MAX_UNITS = 5, 500


def pair_loss(correlations: np.ndarray, distances: np.ndarray) -> float:
    """(1 - Pearson(correlations, 1 / (distances + 1))) / 2 (TDANN's pearson_scl; NaN for a constant input)."""
    x = correlations - correlations.mean()
    y = 1.0 / (distances + 1.0)
    y = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = float(x @ y / np.sqrt((x @ x) * (y @ y)))
    return (1.0 - r) / 2.0


def swap_in_square(features: np.ndarray, positions: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    """(positions after `steps` tried swaps, swaps kept) of one square's units, features (images, units)."""
    positions = positions.copy()
    rng = np.random.default_rng(RNG_SEED)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = np.corrcoef(features.T)
    correlations = np.where(np.isnan(correlations), 0.0, correlations)
    units, kept = np.arange(len(positions)), 0
    for _ in range(steps):
        pair = rng.choice(units, size=(2,), replace=False)
        rows = correlations[pair].ravel()
        before = pair_loss(rows, cdist(positions[pair], positions).ravel())
        positions[pair] = positions[pair[::-1]]
        after = pair_loss(rows, cdist(positions[pair], positions).ravel())
        if after >= before:
            positions[pair] = positions[pair[::-1]]
        else:
            kept += 1
    return positions, kept


def swap_optimise(features: np.ndarray, positions: np.ndarray, steps: int, steps_per_square: int, width: float,
                  sampler: np.random.Generator, safe_point: Callable[[], None] | None = None) -> tuple[np.ndarray, int]:
    """(positions after `steps` tried swaps in squares of `width` mm, swaps kept); features (images, units).
    `sampler` draws the units a square of 500 or more keeps."""
    positions = positions.copy()
    if not 0 < width <= min(np.ptp(positions, axis=0)):
        raise ValueError(f"a square of width {width} does not fit the positions' extent {np.ptp(positions, axis=0)}")
    rng = np.random.default_rng(RNG_SEED)
    kept = 0
    for _ in range(-(-steps // steps_per_square) if steps else 0):
        if safe_point is not None:
            safe_point()
        x0, y0 = (rng.uniform(low, max(low, high)) for low, high in zip(positions.min(axis=0),
                                                                         positions.max(axis=0) - width))
        inside = np.where((positions[:, 0] >= x0) & (positions[:, 0] <= x0 + width)
                          & (positions[:, 1] >= y0) & (positions[:, 1] <= y0 + width))[0]
        if len(inside) < MIN_UNITS:
            continue
        if len(inside) >= MAX_UNITS:
            inside = sampler.choice(inside, size=(MAX_UNITS,), replace=False)
        positions[inside], swaps = swap_in_square(features[:, inside], positions[inside], steps_per_square)
        kept += swaps
    return positions, kept


def swap_layer(layer: TDANNPositions, features: np.ndarray, steps: int, steps_per_square: int,
               rng: np.random.Generator, safe_point: Callable[[], None] | None = None,
               count: int = NEIGHBOURHOODS) -> tuple[TDANNPositions, int]:
    """(the layer's positions swap-optimised on its responses (images, units), with neighbourhoods drawn anew on them;
    swaps kept)."""
    if features.shape[1] != len(layer.coordinates):
        raise ValueError(f"{layer.name}: responses of {features.shape[1]} units, positions of "
                         f"{len(layer.coordinates)}")
    moved, kept = swap_optimise(features, layer.coordinates, steps, steps_per_square, layer.neighborhood_width, rng,
                                safe_point)
    hoods = trim(neighbourhood_lists(moved, layer.neighborhood_width, count, rng), rng, layer.name)
    return TDANNPositions(layer.name, layer.dims, moved, hoods, layer.neighborhood_width), kept
