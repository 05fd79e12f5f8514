"""The layers of a peer's positions directory, as an evaluation reads them: which module's output holds each layer's
units, where the recorded units sit, and how the set was read (format, version, TDANN's per-layer rescaling).

TDANN (neuroailab/TDANN `spacetorch/models/positions.py`, `spacetorch/analyses/core.py`): a layer named `layer2.0` is
the output of the torchvision ResNet's block `layer2.0`, every C·H·W value a unit (flat index i at coordinates[i], mm).
A set without `version.txt` is version 1, whose coordinates TDANN's analyses scale per layer (`get_positions`,
rescale=True, the default there): layer1 0.6, layer2 1.5, layer3.0 1.75, layer3.1 1.4, layer4 7.

TopoLM (epflneuroailab/topolm `models/model.py`): `layer.{i}.attn` and `layer.{i}.mlp` are block i's residual stream
after its attention and after its MLP (`with_resid: true`, TopoLM's training default): in the project's GPT, the input
of `transformer.h.{i}.ln_2` and the output of `transformer.h.{i}`; a checkpoint saved with `with_resid: false` has them
at the sublayers' own outputs (`attn`, `mlp`). Coordinates are cells of the 28 × 28 sheet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from toponets_exp.errors import ConfigError, few
from toponets_exp.evaluation.position_settings import PositionSettings
from toponets_exp.evaluation.settings import EvalSettings
from toponets_exp.topo.unit_positions import read_tdann_positions, read_topolm_positions

log = logging.getLogger(__name__)
TOPOLM_FILE = re.compile(r"layer\.(\d+)\.(attn|mlp)\.pkl")
TDANN_RESCALE = {"layer1.0": 0.6, "layer1.1": 0.6, "layer2.0": 1.5, "layer2.1": 1.5, "layer3.0": 1.75,
                 "layer3.1": 1.4, "layer4.0": 7.0, "layer4.1": 7.0}  # spacetorch/analyses/core.py get_positions
UNITS = {"tdann": "mm", "topolm": "sheet cells"}


@dataclass(frozen=True)
class PositionedLayer:
    """One layer of a positions set: the module (and whether its input or output) holding its units, the recorded
    units (flat indices, sorted) and their coordinates."""

    name: str
    module: str
    record_input: bool
    total: int
    units: np.ndarray        # (n,) flat unit indices recorded
    coordinates: np.ndarray  # (n, 2) their positions


@dataclass(frozen=True)
class PositionSet:
    """A read positions directory: its format, version, the scale applied per layer and its layers."""

    directory: str
    format: str
    version: int | None
    scale: Mapping[str, float]
    layers: list[PositionedLayer]

    @property
    def length_unit(self) -> str:
        """What a coordinate's unit is: mm (TDANN) or sheet cells (TopoLM)."""
        return UNITS[self.format]

    def describe(self) -> dict[str, Any]:
        """The set as report.json records it."""
        return {"dir": self.directory, "format": self.format, "version": self.version, "length_unit": self.length_unit,
                "scale": dict(self.scale), "layers": {
                    layer.name: {"module": layer.module, "at": "input" if layer.record_input else "output",
                                 "units": layer.total, "units_recorded": int(len(layer.units))}
                    for layer in self.layers}}


def positions_format(directory: Path) -> str:
    """tdann or topolm, by the directory's file names (TopoLM's are layer.{i}.{attn,mlp}.pkl)."""
    names = [p.name for p in directory.iterdir() if p.suffix in (".pkl", ".npz")]
    return "topolm" if names and all(TOPOLM_FILE.fullmatch(n) for n in names) else "tdann"


def tdann_version(directory: Path) -> int:
    """The set's version as TDANN's NetworkPositions reads it: version.txt's first line, 1 without it."""
    path = directory / "version.txt"
    if not path.is_file():
        return 1
    line = path.read_text(encoding="utf-8").splitlines()[:1]
    try:
        return int(line[0])
    except (IndexError, ValueError):
        raise ConfigError(f"eval.positions.dir: {str(path)!r} does not start with an integer version") from None


def _topolm_module(name: str, with_resid: bool) -> tuple[str, bool]:
    """The module (and input or output) of the project's GPT that holds TopoLM layer `name`."""
    block, part = TOPOLM_FILE.fullmatch(f"{name}.pkl").groups()
    if not with_resid:
        return f"transformer.h.{block}.{part}", False
    return (f"transformer.h.{block}.ln_2", True) if part == "attn" else (f"transformer.h.{block}", False)


def _sampled(total: int, max_units: int, seed: int) -> np.ndarray:
    """Every unit index, or a seeded uniform sample of max_units of them (sorted)."""
    if total <= max_units:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=max_units, replace=False))


def read_position_set(settings: PositionSettings, seed: int, with_resid: bool = True) -> PositionSet:
    """The positions directory of eval.positions.dir, its layers mapped to modules and their units sampled."""
    directory = Path(str(settings.dir)).expanduser()
    fmt = positions_format(directory)
    layers, scale, version = [], {}, None
    if fmt == "tdann":
        version = tdann_version(directory)
        read = read_tdann_positions(directory)
        if settings.rescale and version == 1:
            scale = {name: TDANN_RESCALE[name] for name in read if name in TDANN_RESCALE}
        for k, (name, layer) in enumerate(read.items()):
            units = _sampled(len(layer.coordinates), settings.max_units, seed + k)
            coordinates = layer.coordinates[units] * scale.get(name, 1.0)
            layers.append(PositionedLayer(name, name, False, len(layer.coordinates), units, coordinates))
    else:
        for k, (name, layer) in enumerate(read_topolm_positions(directory).items()):
            module, record_input = _topolm_module(name, with_resid)
            units = _sampled(len(layer.coordinates), settings.max_units, seed + k)
            layers.append(PositionedLayer(name, module, record_input, len(layer.coordinates), units,
                                          layer.coordinates[units]))
    log.info("Positions: %d %s layers from %s%s", len(layers), fmt, directory,
             f" (version {version}, TDANN's per-layer rescaling)" if scale else "")
    return PositionSet(str(directory), fmt, version, scale, layers)


def check_position_modules(positions: PositionSet, net: nn.Module) -> None:
    """Every layer of the set names a module of the model (TDANN: a ResNet block; TopoLM: a GPT block)."""
    modules = dict(net.named_modules())
    missing = [layer.name for layer in positions.layers if layer.module not in modules]
    if missing:
        raise ConfigError(f"eval.positions.dir holds {positions.format} layers {few(missing)}, which name no module "
                          f"of {type(net).__name__} (e.g. {positions.layers[0].module}); give the model the positions "
                          "were made for")


def positions_for(settings: EvalSettings, net: nn.Module, model_args: Mapping[str, Any]) -> PositionSet | None:
    """The positions set of eval.positions.dir checked against the model (None without one); a TopoLM checkpoint's
    model_args say where its units are (with_resid, TopoLM's default true)."""
    if settings.positions.dir is None:
        return None
    positions = read_position_set(settings.positions, settings.seed, bool(model_args.get("with_resid", True)))
    check_position_modules(positions, net)
    return positions
