"""Explicit unit positions: which unit sits at each cell of a layer's sheet, shuffled or optimised by swaps.

A placement is a permutation `order` of a layer's output units: order[c] is the unit at sheet cell c (row-major).
The identity (no placement) puts unit i at cell i. TopoLoss, the spatial correlation loss and the evaluation maps
read a placed layer's units cell by cell (`TopoLayer.on_sheet`), so a permuted layout with its weights permuted
alike is the identity layout.

Swap optimisation (TDANN `spacetorch/swapopt.py::swap_optimize_neighborhoods`; TopoLM `models/positions.py::
swap_optimize`, run before training by `models/init_pos.py`): starting from a shuffled sheet (TopoLM's start), for
each of `neighbourhoods` square windows (drawn as the spatial loss's, `sample_neighbourhoods`), `steps` times swap
the units of two random cells of the window and keep the swap when the window's spatial correlation loss on the
layer's responses strictly falls (TDANN's rule; TopoLM also keeps a swap that leaves it equal). A `safe_point`, called
between two swaps, may end it there (the run's stop on a Slurm signal, toponets_exp.resume.stop): no placement is
kept, and the requeued job, which finds no checkpoint, places the units again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from toponets_exp.checks import choice, integer, number
from toponets_exp.console import global_rank
from toponets_exp.errors import ConfigError
from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.module_types import output_unit_dim
from toponets_exp.topo.spatial_correlation import (grid_positions, sample_neighbourhoods, spatial_correlation_loss,
                                                   unit_responses)

log = logging.getLogger(__name__)
POSITIONS = ("identity", "shuffled", "swapopt")
SWAPOPT_KEYS = {"neighbourhoods", "steps", "radius"}
SWAPOPT_SAMPLES = 4096  # response samples per layer the swaps are judged on (a conv map's locations add up fast)


def generator(seed: int, index: int) -> torch.Generator:
    """A CPU generator for the placement of the index-th placed module of a run with `seed`."""
    state = np.random.SeedSequence((seed, index, 0x5EA7)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state.view(np.uint64)[0] >> 1))


def shuffled(units: int, rng: torch.Generator) -> torch.Tensor:
    """A uniformly random placement of `units` units."""
    return torch.randperm(units, generator=rng)


def window_loss(responses: torch.Tensor, order: torch.Tensor, window: torch.Tensor, cells: torch.Tensor) -> float:
    """The spatial correlation loss (Euclidean distances, as TDANN's and TopoLM's) of one window of cells: the
    responses of the units placed there."""
    units = responses.index_select(1, order[window])
    hood = torch.arange(len(window))[None]
    return float(spatial_correlation_loss(units, (1, len(window)), hood, positions=cells[window]))


def swap_optimise(responses: torch.Tensor, sheet: tuple[int, int], order: torch.Tensor, neighbourhoods: int,
                  steps: int, radius: float, rng: torch.Generator,
                  safe_point: Callable[[], None] | None = None) -> tuple[torch.Tensor, int]:
    """(the optimised placement, swaps kept) from `order`, on responses (samples, units) of the layer's units;
    `safe_point` is called before every swap."""
    order = order.clone()
    cells = grid_positions(sheet, dtype=responses.dtype)
    kept = 0
    for window in sample_neighbourhoods(sheet, neighbourhoods, radius, rng, "cpu"):
        current = window_loss(responses, order, window, cells)
        for _ in range(steps):
            if safe_point is not None:
                safe_point()
            pair = window[torch.randperm(len(window), generator=rng)[:2]]
            order[pair] = order[pair.flip(0)]
            loss = window_loss(responses, order, window, cells)
            if loss < current:
                current, kept = loss, kept + 1
            else:
                order[pair] = order[pair.flip(0)]
    return order, kept


def placed(layer: TopoLayer) -> bool:
    """Whether a placement applies to the layer: its output units (weights or bias) on the sheet, not its inputs."""
    return layer.side == "output" and layer.loss != "wiring"


def place(layers: Iterable[TopoLayer], placements: Mapping[str, torch.Tensor]) -> None:
    """Give every layer of a placed module its module's placement (in place: the layers are shared)."""
    for layer in layers:
        if placed(layer) and layer.name in placements:
            layer.order = placements[layer.name]


def module_responses(pl_module: torch.nn.Module, inputs: torch.Tensor, layers: list[TopoLayer],
                     max_samples: int = SWAPOPT_SAMPLES) -> dict[str, Any]:
    """Each layer's (samples, units) responses to `inputs` (the spatial loss's samples: a conv map's locations
    too, every k-th kept so at most `max_samples` remain), recorded without gradients, in eval mode and without
    touching the RNGs, the module's mode restored."""
    recorded: dict[str, torch.Tensor] = {}

    def keep(layer: TopoLayer, output: torch.Tensor) -> None:
        samples = unit_responses(output.detach(), output_unit_dim(layer.module, layer.param), "locations")
        recorded[layer.name] = samples[::-(-len(samples) // max_samples)].float().cpu()

    handles = [layer.module.register_forward_hook(lambda module, args, output, layer=layer: keep(layer, output))
               for layer in layers]
    training = pl_module.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[inputs.device] if inputs.is_cuda else []):
            pl_module.eval()
            pl_module(inputs)
    finally:
        pl_module.train(training)
        for handle in handles:
            handle.remove()
    return recorded


@dataclass
class Placements:
    """How a run places its layers' units (topo.positions, topo.swapopt), and the placements made."""

    kind: str = "identity"
    seed: int = 0
    neighbourhoods: int = 100
    steps: int = 50
    radius: float = 3.0
    by_module: dict[str, torch.Tensor] = field(default_factory=dict)
    safe_point: Callable[[], None] | None = None  # called between two swaps (the run's stop on a signal)

    @classmethod
    def from_config(cls, kind: str, swapopt: Mapping[str, Any], seed: int, layers: Sequence[TopoLayer],
                    safe_point: Callable[[], None] | None = None) -> Placements:
        """The checked settings (topo.positions, topo.swapopt.*)."""
        choice("topo.positions", kind, POSITIONS)
        unknown = sorted(set(swapopt) - SWAPOPT_KEYS)
        if unknown:
            raise ConfigError(f"topo.swapopt has unknown key(s) {', '.join(unknown)}; accepted: "
                              f"{', '.join(sorted(SWAPOPT_KEYS))}")
        if kind != "identity" and any(layer.loss == "wiring" for layer in layers):
            raise ConfigError(f"topo.positions={kind} places units of TopoLoss and the spatial loss; the wiring cost "
                              "keeps the identity layout (use topo.positions=identity with loss=wiring)")
        made = cls(kind, seed, integer("topo.swapopt.neighbourhoods", swapopt.get("neighbourhoods", 100), 1),
                   integer("topo.swapopt.steps", swapopt.get("steps", 50), 0),
                   number("topo.swapopt.radius", swapopt.get("radius", 3.0), 1.0), safe_point=safe_point)
        for layer in layers if kind == "swapopt" else []:  # a window that does not fit fails now, not at step 0
            if placed(layer):
                try:
                    sample_neighbourhoods(layer.sheet, 1, made.radius, torch.Generator())
                except ConfigError as err:
                    raise ConfigError(f"topo.swapopt (layer {layer.name!r}, sheet {layer.sheet[0]}x"
                                      f"{layer.sheet[1]}): {err}") from None
        return made

    @property
    def pending(self) -> bool:
        """Whether the run places its units and has not yet (nor restored its placements from a checkpoint)."""
        return self.kind != "identity" and not self.by_module

    def make(self, pl_module: torch.nn.Module, inputs: torch.Tensor, layers: Sequence[TopoLayer],
             strategy: Any) -> None:
        """Place every placed module's units (swapopt: rank 0 optimises them on its responses to `inputs` and
        broadcasts its placements to every rank)."""
        modules = list({layer.name: layer for layer in layers if placed(layer)}.values())
        log.info("Unit placement (topo.positions=%s) of %d modules before the first training step", self.kind,
                 len(modules))
        if self.kind == "swapopt":
            made = self._swap_optimised(pl_module, inputs, modules) if global_rank() == 0 else None
            self.by_module = strategy.broadcast(made, src=0)
        else:
            self.by_module = {layer.name: shuffled(layer.sheet[0] * layer.sheet[1], generator(self.seed, index))
                              for index, layer in enumerate(modules)}

    def _swap_optimised(self, pl_module: torch.nn.Module, inputs: torch.Tensor,
                        modules: list[TopoLayer]) -> dict[str, torch.Tensor]:
        """Each module's placement swap-optimised from a shuffled one, on its responses to `inputs`."""
        responses = module_responses(pl_module, inputs, modules)
        made = {}
        for index, layer in enumerate(modules):
            rng = generator(self.seed, index)
            start = shuffled(layer.sheet[0] * layer.sheet[1], rng)
            made[layer.name], kept = swap_optimise(responses[layer.name], layer.sheet, start, self.neighbourhoods,
                                                   self.steps, self.radius, rng, self.safe_point)
            log.info("swap optimisation of %s: %d of %d swaps kept", layer.name, kept,
                     self.neighbourhoods * self.steps)
        return made

    def state_dict(self) -> dict[str, list[int]]:
        """The placements, as lists (a checkpoint's plain data)."""
        return {name: order.tolist() for name, order in self.by_module.items()}

    def load_state_dict(self, state: Mapping[str, Sequence[int]]) -> None:
        """Restore the placements of a checkpoint."""
        self.by_module = {name: torch.tensor(order, dtype=torch.long) for name, order in state.items()}
