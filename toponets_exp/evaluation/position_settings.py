"""eval.positions, checked from the config alone: a peer's positions directory and how its layers' units are sampled
and measured at their coordinates (TDANN's analyses' samples and windows)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toponets_exp.checks import is_number, must


@dataclass(frozen=True)
class SampleSettings:
    """How TDANN samples units for the smoothness of a map at positions (eval.positions.selectivity / orientation)."""

    num_samples: int
    sample_size: int
    distance_cutoff: float | None
    min_mean_response: float | None = None
    max_units: int | None = None


@dataclass(frozen=True)
class WindowSettings:
    """TDANN's windows of units for response correlation vs distance (eval.positions.windows); width None: auto."""

    width: float | None
    window_number_limit: int | None
    unit_number_limit: int | None
    edge_buffer: float
    num_bins: int


@dataclass(frozen=True)
class PositionSettings:
    """eval.positions: a peer's positions directory and how its layers are measured at their coordinates."""

    dir: str | None
    rescale: bool
    max_units: int
    selectivity: SampleSettings
    orientation: SampleSettings
    windows: WindowSettings


def check_positions(positions: dict[str, Any]) -> None:
    """eval.positions' own numbers: the response floor, the window width and buffer, the directory."""
    floor = positions["selectivity"]["min_mean_response"]
    must("eval.positions.selectivity.min_mean_response", floor, floor is None or is_number(floor),
         "a number (or null: every unit)")
    windows = positions["windows"]
    width = windows["width"]
    must("eval.positions.windows.width", width, width == "auto" or (is_number(width) and width > 0),
         "a positive width (mm for TDANN) or auto")
    must("eval.positions.windows.edge_buffer", windows["edge_buffer"],
         is_number(windows["edge_buffer"]) and windows["edge_buffer"] >= 0, "a distance >= 0")
    given = positions["dir"]
    must("eval.positions.dir", given, given is None or (isinstance(given, str) and Path(given).expanduser().is_dir()),
         "a directory of layer position files (TDANN's layer1.0.pkl ..., TopoLM's layer.0.attn.pkl ...) or null")


def position_settings(positions: dict[str, Any]) -> PositionSettings:
    """The checked eval.positions as a record (window width auto as None)."""
    windows = dict(positions["windows"], width=None if positions["windows"]["width"] == "auto"
                   else positions["windows"]["width"])
    return PositionSettings(positions["dir"], positions["rescale"], positions["max_units"],
                            SampleSettings(**positions["selectivity"]), SampleSettings(**positions["orientation"]),
                            WindowSettings(**windows))
