"""topo.loss=tdann: TDANN's recipe of positions and loss for a ResNet's blocks (`topo.tdann.*`): every unit of each
block's output placed retinotopically and swap-optimised on the model's responses to TDANN's gratings, written in
TDANN's format to `<run dir>/positions` and read back from there (or trained on a given TDANN positions directory),
then TDANN's spatial loss on those blocks in the topo callback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from toponets_exp.brain.gratings import make_gratings
from toponets_exp.checks import boolean, integer, number
from toponets_exp.errors import CheckpointError, ConfigError
from toponets_exp.models.resnet import resnet_depth
from toponets_exp.topo.tdann_hooks import TDANNSpatial, tdann_layers
from toponets_exp.topo.tdann_layout import AREAS, NEIGHBOURHOODS, retinotopic
from toponets_exp.topo.tdann_swapopt import swap_layer
from toponets_exp.topo.unit_positions import TDANNPositions, read_tdann_positions, write_tdann_positions

log = logging.getLogger(__name__)
POSITIONS_DIR = "positions"  # in the run directory
KEYS = {"layers", "layer_weight", "neighborhoods_per_batch", "use_old_version", "positions_dir", "widths_follow_maps",
        "neighbourhoods", "swapopt"}
SWAPOPT_KEYS = {"steps", "steps_per_neighbourhood"}


@dataclass(frozen=True)
class TDANNSettings:
    """The checked `topo.tdann` settings."""

    layers: tuple[str, ...]
    layer_weight: float
    neighborhoods_per_batch: int
    use_old_version: bool
    positions_dir: Path | None
    widths_follow_maps: bool
    neighbourhoods: int
    swap_steps: int
    steps_per_neighbourhood: int


def tdann_settings(node: Any) -> TDANNSettings:
    """`topo.tdann`, checked (unknown keys and bad values are ConfigErrors)."""
    tdann = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
    unknown = sorted(set(tdann) - KEYS)
    swapopt = tdann.get("swapopt") or {}
    unknown += [f"swapopt.{key}" for key in sorted(set(swapopt) - SWAPOPT_KEYS)]
    if unknown:
        raise ConfigError(f"topo.tdann has unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(KEYS))} "
                          f"(swapopt: {', '.join(sorted(SWAPOPT_KEYS))})")
    layers = tdann.get("layers") or []
    if not isinstance(layers, list) or not layers or not all(isinstance(name, str) for name in layers):
        raise ConfigError(f"topo.tdann.layers={layers!r}: accepted: a list of block names (layer1.0 ... layer4.1; "
                          "topo=tdann sets TDANN's)")
    directory = tdann.get("positions_dir")
    return TDANNSettings(
        tuple(layers), number("topo.tdann.layer_weight", tdann.get("layer_weight", 0.25), 0.0),
        integer("topo.tdann.neighborhoods_per_batch", tdann.get("neighborhoods_per_batch", 1), 1),
        boolean("topo.tdann.use_old_version", tdann.get("use_old_version", False)),
        Path(str(directory)).expanduser() if directory else None,
        boolean("topo.tdann.widths_follow_maps", tdann.get("widths_follow_maps", True)),
        integer("topo.tdann.neighbourhoods", tdann.get("neighbourhoods", NEIGHBOURHOODS), 1),
        integer("topo.tdann.swapopt.steps", swapopt.get("steps", 0), 0),
        integer("topo.tdann.swapopt.steps_per_neighbourhood", swapopt.get("steps_per_neighbourhood", 500), 1))


def block_depth(net: nn.Module, layers: tuple[str, ...]) -> int:
    """18 or 50: the ResNet whose blocks TDANN places; a ConfigError for another model or block name."""
    depth = resnet_depth(net.state_dict())
    if depth not in AREAS:
        raise ConfigError(f"topo.loss=tdann places the blocks of a ResNet-18 or -50 (TDANN's brain mapping); "
                          f"{type(net).__name__} is neither: use model=tdann_resnet, resnet18 or resnet50")
    unknown = [name for name in layers if name not in AREAS[depth]]
    if unknown:
        raise ConfigError(f"topo.tdann.layers names {', '.join(unknown)}, not blocks of a ResNet-{depth}; accepted: "
                          f"{', '.join(AREAS[depth])}")
    return depth


@torch.no_grad()
def block_outputs(net: nn.Module, images: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Each block's output (images, C, H, W) to `images`, in eval mode, in batches, the RNGs and the mode kept."""
    modules = dict(net.named_modules())
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = [modules[name].register_forward_hook(lambda m, a, out, name=name: outputs[name].append(out.float()))
               for name in layers]
    training = net.training
    try:
        with torch.random.fork_rng():
            net.eval()
            for batch in images.split(128):
                net(batch)
    finally:
        net.train(training)
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts) for name, parts in outputs.items()}


def grating_images(size: int, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> torch.Tensor:
    """TDANN's 640 gratings at `size` px, standardised as the data's images are."""
    mean, std = (torch.tensor(v, dtype=torch.float32)[:, None, None] for v in stats)
    return (make_gratings(size).images - mean) / std


def make_positions(settings: TDANNSettings, net: nn.Module, depth: int, size: int, stats: Any, seed: int,
                   safe_point: Callable[[], None] | None = None) -> dict[str, TDANNPositions]:
    """TDANN's positions of the blocks' units of a ResNet-`depth`: retinotopic, then swap-optimised on the responses
    to the gratings."""
    responses = block_outputs(net, grating_images(size, stats), settings.layers)
    dims = {name: tuple(out.shape[1:]) for name, out in responses.items()}
    made = retinotopic(dims, depth, seed, settings.widths_follow_maps, settings.neighbourhoods)
    rng = np.random.default_rng([seed, 0x5A9])
    for name in settings.layers if settings.swap_steps else ():
        features = responses[name].flatten(start_dim=1).double().numpy()
        made[name], kept = swap_layer(made[name], features, settings.swap_steps, settings.steps_per_neighbourhood,
                                      rng, safe_point, settings.neighbourhoods)
        log.info("TDANN swap optimisation of %s: %d of %d swaps kept", name, kept, settings.swap_steps)
    return made


def check_fit(positions: Mapping[str, TDANNPositions], dims: Mapping[str, tuple[int, ...]], source: str) -> None:
    """Every block has positions of its output's (C, H, W); else a ConfigError naming the first that does not."""
    for name, shape in dims.items():
        if name not in positions:
            raise ConfigError(f"{source} holds no positions of {name} (it has {', '.join(positions)})")
        if tuple(positions[name].dims) != tuple(shape):
            raise ConfigError(f"{source}: {name}'s positions are of a {positions[name].dims} output; the block "
                              f"outputs {tuple(shape)} here (the input size decides H and W)")


def run_positions(settings: TDANNSettings, net: nn.Module, datamodule: Any, seed: int, out: Path, resumed: bool,
                  safe_point: Callable[[], None] | None = None) -> tuple[dict[str, TDANNPositions], bool]:
    """(the positions the run trains on, whether they are to be written to <run dir>/positions): a resumed run's
    own, else `positions_dir`'s, else made now."""
    depth = block_depth(net, settings.layers)
    source = out / POSITIONS_DIR if resumed else settings.positions_dir
    if source is None:
        stats = getattr(datamodule, "pixel_stats", None)
        if stats is None or not hasattr(datamodule, "input_size"):
            raise ConfigError(f"topo.loss=tdann makes positions from responses to images; {type(datamodule).__name__}"
                              " gives no image size and standardisation")
        return make_positions(settings, net, depth, int(datamodule.input_size), stats, seed, safe_point), True
    try:
        positions = read_tdann_positions(source)
    except CheckpointError as err:
        raise ConfigError(f"topo.tdann.positions_dir: {err}") from None
    size = int(getattr(datamodule, "input_size", 224))
    outputs = block_outputs(net, torch.zeros(2, 3, size, size), settings.layers)
    dims = {name: tuple(out.shape[1:]) for name, out in outputs.items()}
    check_fit(positions, dims, f"TDANN positions {str(source)!r}")
    return {name: positions[name] for name in settings.layers}, not resumed


def build_tdann(settings: TDANNSettings, net: nn.Module, positions: Mapping[str, TDANNPositions], weight: float,
                seed: int) -> TDANNSpatial:
    """TDANN's loss on the blocks at `positions`, τ `weight`."""
    layers = tdann_layers(net, positions, weight, {name: settings.layer_weight for name in settings.layers})
    return TDANNSpatial(layers, settings.neighborhoods_per_batch, settings.use_old_version, seed)


def write_positions(positions: Mapping[str, TDANNPositions], out: Path) -> Path:
    """The run's positions in TDANN's format, in <run dir>/positions."""
    return write_tdann_positions(out / POSITIONS_DIR, positions)
