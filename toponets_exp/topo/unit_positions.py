"""The unit positions published with TDANN's and TopoLM's models, read into frozen records of our own.

TDANN (neuroailab/TDANN `spacetorch/models/positions.py`): a directory with one file per layer, named after the
layer (`layer1.0.pkl` ... `layer4.1.pkl`; `LayerPositions.save_np` writes `.npz` instead), holding a
`LayerPositions`: name, dims (C, H, W) (a 1-tuple for a linear layer), coordinates (N, 2) in mm (row i: the unit of
flat index i of the (C, H, W) output), neighborhood_indices (P, Q) unit indices of P precomputed neighbourhoods,
neighborhood_width in mm. A `.pkl` is a pickle of `spacetorch.models.positions.LayerPositions` with NumPy fields; an
`.npz` holds the five fields as arrays (name and neighborhood_width 0-d). A `version.txt` may lie beside them.

TopoLM (epflneuroailab/topolm `models/positions.py`, written by `models/init_pos.py`): one pickle per layer,
`layer.{i}.attn.pkl` and `layer.{i}.mlp.pkl`, of `positions.LayerPositions` with torch-tensor fields: name,
coordinates (N, 2) cells of a √N × √N sheet, neighborhood_indices (M, N) 0/1 masks (one row per neighbourhood),
neighborhoods_per_batch.

Pickles are read by `toponets_exp.restricted_pickle`: nothing named in a file runs.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from toponets_exp.errors import CheckpointError, few
from toponets_exp.io import replacing, write_text
from toponets_exp.restricted_pickle import PickledRecord, read_pickle

log = logging.getLogger(__name__)
TDANN_RECORD = "spacetorch.models.positions.LayerPositions"
TOPOLM_RECORD = "positions.LayerPositions"
TDANN_FIELDS = ("name", "dims", "coordinates", "neighborhood_indices", "neighborhood_width")
TOPOLM_FIELDS = ("name", "coordinates", "neighborhood_indices", "neighborhoods_per_batch")
Record = TypeVar("Record")


@dataclass(frozen=True)
class TDANNPositions:
    """One TDANN layer: unit i (flat (C, H, W) index) sits at coordinates[i] (mm); read-only arrays."""

    name: str
    dims: tuple[int, ...]
    coordinates: np.ndarray           # (N, 2) float64, mm
    neighborhood_indices: np.ndarray  # (P, Q) int64 unit indices
    neighborhood_width: float         # mm


@dataclass(frozen=True)
class TopoLMPositions:
    """One TopoLM layer: unit i (feature i) sits at sheet cell coordinates[i]; read-only arrays."""

    name: str
    coordinates: np.ndarray    # (N, 2) float64 sheet cells
    neighborhoods: np.ndarray  # (M, N) bool, row m: the units of neighbourhood m
    neighborhoods_per_batch: int


def _frozen(array: np.ndarray) -> np.ndarray:
    """`array`, read-only."""
    array.setflags(write=False)
    return array


def _array(value: Any, field: str, source: str) -> np.ndarray:
    """A numeric field as a NumPy array (from NumPy or torch)."""
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        kind = f"a {array.dtype} array" if isinstance(array, np.ndarray) else f"a {type(value).__name__}"
        raise CheckpointError(f"{source}: {field} is {kind}, not a numeric array")
    return array


def _coordinates(value: Any, source: str) -> np.ndarray:
    """Finite (N, 2) coordinates as float64."""
    coordinates = _array(value, "coordinates", source)
    if coordinates.ndim != 2 or coordinates.shape[1] != 2 or not len(coordinates):
        raise CheckpointError(f"{source}: coordinates have shape {coordinates.shape}, not (units, 2)")
    if not np.isfinite(coordinates).all():
        raise CheckpointError(f"{source}: {int((~np.isfinite(coordinates)).any(1).sum())} units have non-finite "
                              "coordinates")
    return _frozen(coordinates.astype(np.float64))


def _fields(record: Any, path: str, names: tuple[str, ...], source: str) -> dict[str, Any]:
    """The named fields of a pickled record of class `path`."""
    if not isinstance(record, PickledRecord) or record.path != path:
        held = record.path if isinstance(record, PickledRecord) else type(record).__name__
        raise CheckpointError(f"{source} holds a {held}, not a {path}")
    missing = [name for name in names if name not in record.fields]
    if missing:
        raise CheckpointError(f"{source}: the {path} lacks {few(missing)}")
    return record.fields


def _npz_fields(path: Path, source: str) -> dict[str, Any]:
    """The TDANN fields of an `.npz` written by `LayerPositions.save_np` (no pickled objects allowed)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            fields = {name: arrays[name] for name in arrays.files}
    except Exception as err:  # noqa: BLE001 - a truncated zip or a pickled (object) array
        raise CheckpointError(f"{source} cannot be read as an .npz of arrays ({type(err).__name__}: {err})") from None
    missing = [name for name in TDANN_FIELDS if name not in fields]
    if missing:
        raise CheckpointError(f"{source} lacks {few(missing)}; TDANN's .npz holds {', '.join(TDANN_FIELDS)}")
    return {name: fields[name][()] if fields[name].ndim == 0 else fields[name] for name in TDANN_FIELDS}


def _tdann_record(fields: dict[str, Any], source: str) -> TDANNPositions:
    """A checked TDANNPositions from the five TDANN fields."""
    coordinates = _coordinates(fields["coordinates"], source)
    dims = _array(np.asarray(fields["dims"]), "dims", source)
    if dims.ndim != 1 or len(dims) not in (1, 3) or dims.dtype.kind not in "iu" or (dims < 1).any():
        raise CheckpointError(f"{source}: dims {fields['dims']!r} are not (C, H, W) or (units,) positive integers")
    if math.prod(dims.tolist()) != len(coordinates):
        raise CheckpointError(f"{source}: dims {tuple(dims.tolist())} make {math.prod(dims.tolist())} units, "
                              f"the coordinates {len(coordinates)}")
    hoods = _array(fields["neighborhood_indices"], "neighborhood_indices", source)
    indices = hoods.dtype.kind in "iu" and (not hoods.size or (hoods.min() >= 0 and hoods.max() < len(coordinates)))
    if hoods.ndim != 2 or not indices:
        raise CheckpointError(f"{source}: neighborhood_indices are not (neighbourhoods, units) indices of the "
                              f"{len(coordinates)} units")
    width = fields["neighborhood_width"]
    if isinstance(width, (bool, np.bool_)) or not isinstance(width, (int, float, np.number)) or not 0 < width < np.inf:
        raise CheckpointError(f"{source}: neighborhood_width {width!r} is not a positive number (mm)")
    return TDANNPositions(str(fields["name"]), tuple(dims.tolist()), coordinates,
                          _frozen(hoods.astype(np.int64)), float(width))


def read_tdann_layer(path: str | Path) -> TDANNPositions:
    """One layer's TDANN positions from its `.pkl` or `.npz` file."""
    path = Path(path)
    source = f"TDANN positions {str(path)!r}"
    if path.suffix == ".npz":
        return _tdann_record(_npz_fields(path, source), source)
    if path.suffix == ".pkl":
        return _tdann_record(_fields(read_pickle(path, {TDANN_RECORD}, "TDANN positions"), TDANN_RECORD,
                                     TDANN_FIELDS, source), source)
    raise CheckpointError(f"{source} is neither .pkl nor .npz, the two files TDANN's LayerPositions writes")


def read_topolm_layer(path: str | Path) -> TopoLMPositions:
    """One layer's TopoLM positions from its `.pkl` file."""
    path = Path(path)
    source = f"TopoLM positions {str(path)!r}"
    record = read_pickle(path, {TOPOLM_RECORD}, "TopoLM positions", tensors=True)
    fields = _fields(record, TOPOLM_RECORD, TOPOLM_FIELDS, source)
    coordinates = _coordinates(fields["coordinates"], source)
    masks = _array(fields["neighborhood_indices"], "neighborhood_indices", source)
    if masks.ndim != 2 or masks.shape[1] != len(coordinates) or not np.isin(masks, (0, 1)).all():
        raise CheckpointError(f"{source}: neighborhood_indices {masks.shape} are not 0/1 masks (neighbourhoods, "
                              f"{len(coordinates)} units)")
    per_batch = fields["neighborhoods_per_batch"]
    if isinstance(per_batch, bool) or not isinstance(per_batch, (int, np.integer)) or per_batch < 1:
        raise CheckpointError(f"{source}: neighborhoods_per_batch {per_batch!r} is not a positive integer")
    return TopoLMPositions(str(fields["name"]), coordinates, _frozen(masks.astype(bool)), int(per_batch))


def _layer_order(name: str) -> list[Any]:
    """A sort key putting layer2.0 before layer10.0 (numbers compared as numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_directory(directory: str | Path, suffixes: tuple[str, ...], reader: Callable[[Path], Record],
                    what: str) -> dict[str, Record]:
    """Every layer file of a positions directory, read, by layer name (the file stem) in layer order."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise CheckpointError(f"{what} directory {str(directory)!r} does not exist or is not a directory")
    files = sorted((p for p in directory.iterdir() if p.suffix in suffixes), key=lambda p: _layer_order(p.stem))
    if not files:
        raise CheckpointError(f"{what} directory {str(directory)!r} holds no {' or '.join(suffixes)} layer files")
    stems = [p.stem for p in files]
    twice = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twice:
        raise CheckpointError(f"{what} directory {str(directory)!r} holds layers {few(twice)} twice (.pkl and .npz)")
    layers = {}
    for path in files:
        layers[path.stem] = reader(path)
        if layers[path.stem].name != path.stem:
            raise CheckpointError(f"{what} {str(path)!r} holds the positions of {layers[path.stem].name!r}, "
                                  f"not of {path.stem!r} its file name says")
    log.info("read the %s of %d layers from %s", what, len(layers), directory)
    return layers


def read_tdann_positions(directory: str | Path) -> dict[str, TDANNPositions]:
    """TDANN's positions directory (`layer1.0.pkl` ...), by layer name in layer order."""
    return _read_directory(directory, (".pkl", ".npz"), read_tdann_layer, "TDANN positions")


def read_topolm_positions(directory: str | Path) -> dict[str, TopoLMPositions]:
    """TopoLM's positions directory (`layer.0.attn.pkl` ...), by layer name in layer order."""
    return _read_directory(directory, (".pkl",), read_topolm_layer, "TopoLM positions")


def write_tdann_positions(directory: str | Path, layers: Mapping[str, TDANNPositions], version: int = 2) -> Path:
    """`layers` as TDANN's `LayerPositions.save_np` writes them (`<name>.npz`: np.savez of its five fields), each
    file atomically, and `version.txt` (TDANN's reader: 2, coordinates in mm)."""
    directory = Path(directory)
    for name, layer in layers.items():
        with replacing(directory / f"{name}.npz") as tmp, open(tmp, "wb") as stream:
            np.savez(stream, name=layer.name, dims=np.asarray(layer.dims), coordinates=layer.coordinates,
                     neighborhood_indices=layer.neighborhood_indices, neighborhood_width=layer.neighborhood_width)
    write_text(directory / "version.txt", f"{version}\n")
    return directory
