"""TDANN's retinotopic initialisation of unit positions: every unit (channel, row, column) of a block's output on a
square of cortex in mm, and the neighbourhoods its spatial loss draws from.

As neuroailab/TDANN @ 80c585d `scripts/save_retinotopic_positions.py` with `spacetorch/utils/spatial_utils.py`
(`compute_rf_centers`, `place_conv` with offset_pattern="random", `jitter_positions`, `precompute_neighborhoods`,
`indices_within_limits`, `collapse_and_trim_neighborhoods`) and the sizes of `spacetorch/constants.py` and
`spacetorch/models/positions.py` (TISSUE_SIZES, NEIGHBORHOOD_WIDTHS):

- the map's locations are anchors on a grid of receptive-field centres (np.linspace(r, T - r, side), r the radius that
  fits `side` fields overlapping by `rf_overlap` in the tissue width T); anchor (row i, column j) sits at
  x = centre[j], y = centre[i]; each channel's unit at that anchor is offset uniformly in [-r, r)² (one draw of
  (channels, 2) per anchor, in anchor order); unit c·H·W + i·W + j is channel c at (i, j), the flat index of the
  (C, H, W) output;
- rf_overlap = min(0.1 · (first layer's side / this layer's side), 1);
- jitter: Gaussian noise of sd 0.3 mm, then each axis rescaled to its former range and moved back to its former
  minimum;
- neighbourhoods: `count` centres uniform in [min + w/2, max - w/2] on x (all of them first), then on y; the units in
  the closed square of width w around each; trimmed to one size: the 5th percentile of the sizes (at least 25), at
  most 500; smaller neighbourhoods dropped, larger ones subsampled without replacement.

Differences, each a choice where TDANN's script cannot run as published: TDANN draws from NumPy's global RNG (the
jitter from an unseeded one); here every draw comes from one seeded Generator, in TDANN's order. Its BRAIN_MAPPING
names layer4 "IT", a key its TISSUE_SIZES lacks: here layer4 is VTC (70 mm, neighbourhoods 31.818 mm), the tissue
its paper gives the last stage. With `widths_follow_maps`, a neighbourhood's width is TDANN's times (the side of the
layer's map at 224 px / the side here), at most the tissue: at 224 px TDANN's own widths; on smaller inputs a
neighbourhood then spans as many map locations and holds as many units as TDANN's (fewer, smaller maps in the same
tissue would leave TDANN's widths with almost no unit).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from toponets_exp.errors import ConfigError
from toponets_exp.topo.unit_positions import TDANNPositions

TISSUE_MM = {"retina": 2.4, "V1": 36.75, "V2": 35.0, "V4": 22.4, "VTC": 70.0}
NEIGHBOURHOOD_MM = {"retina": 0.0475, "V1": 1.626, "V2": 3.977, "V4": 2.545, "VTC": 31.818}
AREAS = {  # TDANN's BRAIN_MAPPING (spacetorch/models/__init__.py), its layer4 "IT" as VTC
    18: {"layer1.0": "retina", "layer1.1": "retina", "layer2.0": "V1", "layer2.1": "V1", "layer3.0": "V2",
         "layer3.1": "V4", "layer4.0": "VTC", "layer4.1": "VTC"},
    50: {**{f"layer1.{i}": "retina" for i in range(3)}, **{f"layer2.{i}": "V1" for i in range(3)}, "layer2.3": "V2",
         **{f"layer3.{i}": "V4" for i in range(6)}, **{f"layer4.{i}": "VTC" for i in range(3)}},
}
SIDE_AT_224 = {"layer1": 56, "layer2": 28, "layer3": 14, "layer4": 7}  # OUTPUT_DIMS_FOR_224_INPUTS' map sides
INITIAL_RF_OVERLAP = 0.1
JITTER_MM = 0.3
NEIGHBOURHOODS = 20_000
KEEP_FRACTION, MIN_SIZE, KEEP_LIMIT = 0.95, 25, 500
POSITIONS_VERSION = 2  # TDANN's POS_VERSION: coordinates already in mm


def rf_centres(side: int, overlap: float, tissue: float) -> tuple[np.ndarray, float]:
    """(centres, radius) of `side` receptive fields overlapping by `overlap` across `tissue` mm."""
    radius = tissue / (side - side * overlap + overlap) / 2.0
    return np.linspace(radius, tissue - radius, side), radius


def place_units(dims: tuple[int, int, int], tissue: float, overlap: float, rng: np.random.Generator) -> np.ndarray:
    """(C·H·W, 2) positions (x, y) in mm of a (C, H, W) output: channels scattered around each location's anchor."""
    channels, rows, cols = dims
    if rows != cols:
        raise ValueError(f"TDANN places square maps; got {rows}x{cols}")
    centres, radius = rf_centres(cols, overlap, tissue)
    xx, yy = np.meshgrid(centres, centres)
    anchors = np.stack((xx.ravel(), yy.ravel()), axis=1)
    offsets = rng.uniform(-radius, radius, size=(len(anchors), channels, 2))
    return np.swapaxes(anchors[:, None, :] + offsets, 0, 1).reshape(-1, 2)


def jitter(positions: np.ndarray, rng: np.random.Generator, sd: float = JITTER_MM) -> np.ndarray:
    """Positions moved by Gaussian noise, then squeezed back into their former range on each axis."""
    moved = positions + rng.normal(0.0, sd, size=positions.shape)
    squeezed = moved / (np.ptp(moved, axis=0) / np.ptp(positions, axis=0))
    return squeezed - squeezed.min(axis=0) + positions.min(axis=0)


def neighbourhood_lists(positions: np.ndarray, width: float, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The units inside `count` closed squares of `width` mm, centred uniformly where they fit (x drawn first)."""
    radius = width / 2
    low = positions.min(axis=0) + radius
    high = np.maximum(positions.max(axis=0) - radius, low)  # a width capped at the extent: low == high, up to rounding
    xs = rng.uniform(low[0], high[0], size=count)
    ys = rng.uniform(low[1], high[1], size=count)
    order = np.argsort(positions[:, 0], kind="stable")
    sorted_x, y_of = positions[order, 0], positions[order, 1]
    starts = np.searchsorted(sorted_x, xs - radius, side="left")
    stops = np.searchsorted(sorted_x, xs + radius, side="right")
    hoods = []
    for x_from, x_to, y in zip(starts, stops, ys):
        inside = (y_of[x_from:x_to] >= y - radius) & (y_of[x_from:x_to] <= y + radius)
        hoods.append(np.sort(order[x_from:x_to][inside]))
    return hoods


def trim(hoods: list[np.ndarray], rng: np.random.Generator, name: str = "layer") -> np.ndarray:
    """The neighbourhoods cut to one size (TDANN's 5th percentile, at least 25, at most 500) as (P, Q) indices."""
    sizes = np.array([len(hood) for hood in hoods])
    size = min(max(int(np.percentile(sizes, (1 - KEEP_FRACTION) * 100)), MIN_SIZE), KEEP_LIMIT)
    kept = [rng.choice(hood, size=size, replace=False) for hood in hoods if len(hood) >= size]
    if not kept:
        raise ConfigError(f"topo.tdann: no neighbourhood of {name} holds {MIN_SIZE} units (the largest holds "
                          f"{sizes.max()}); widen its neighbourhoods (topo.tdann.widths_follow_maps=true, or a larger "
                          "input)")
    return np.stack(kept).astype(np.int64)


def neighbourhood_width(name: str, area: str, side: int, follow_maps: bool, tissue: float) -> float:
    """A layer's neighbourhood width in mm: TDANN's, scaled by its map side at 224 px over this one if asked."""
    width = NEIGHBOURHOOD_MM[area]
    if follow_maps:
        width *= SIDE_AT_224[name.split(".")[0]] / side
    return min(width, tissue)


def retinotopic(dims: Mapping[str, tuple[int, int, int]], depth: int, seed: int, follow_maps: bool = True,
                count: int = NEIGHBOURHOODS) -> dict[str, TDANNPositions]:
    """TDANN's initial positions of every unit of the named blocks, whose outputs have `dims` (C, H, W)."""
    areas = AREAS.get(depth)
    if areas is None or set(dims) - set(areas):
        raise ConfigError(f"TDANN places ResNet-18 and -50 blocks ({', '.join(AREAS[18])} ...); got depth {depth} "
                          f"and layers {', '.join(dims)}")
    rng = np.random.default_rng(seed)
    first_side = next(iter(dims.values()))[-1]
    made = {}
    for name, shape in dims.items():
        area, tissue = areas[name], TISSUE_MM[areas[name]]
        overlap = min(INITIAL_RF_OVERLAP * first_side / shape[-1], 1.0)
        coordinates = jitter(place_units(shape, tissue, overlap, rng), rng)
        width = neighbourhood_width(name, area, shape[-1], follow_maps, float(np.ptp(coordinates, axis=0).min()))
        hoods = trim(neighbourhood_lists(coordinates, width, count, rng), rng, name)
        made[name] = TDANNPositions(name, tuple(shape), coordinates, hoods, width)
    return made
