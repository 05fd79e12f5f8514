"""What every layer of a positions set gets, vision or language: ED of its units' responses, response correlation vs
distance in TDANN's windows, and a t map's TDANN smoothness (and, in mm, TDANN's patches) at the units' coordinates.
The measures defined only on a lattice are listed per layer as left out, never computed on an invented grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from toponets_exp.brain import effective_dimensionality
from toponets_exp.brain.correlation_windows import WINDOW_WIDTH_MM, correlation_smoothness_at
from toponets_exp.brain.patches import find_patches_at
from toponets_exp.brain.tdann import leading_bins, mean_smoothness, tdann_curves_at
from toponets_exp.evaluation.positioned import PositionedLayer, PositionSet
from toponets_exp.evaluation.position_settings import SampleSettings
from toponets_exp.evaluation.settings import EvalSettings

GRID_ONLY = {  # measure -> why it is not computed at explicit positions
    "weight_smoothness": "the units are a module's output values (a block's C·H·W, a residual stream), not one "
                         "weight vector each",
    "morans_i": "Moran's I with rook neighbours on a lattice",
    "morans_i_topolm": "Moran's I with queen neighbours on a lattice",
    "topoformer_tgi": "Topoformer's TGI on a torus of the sheet",
    "map_similarity_ssim": "SSIM compares images of the sheet",
    "efficiency": "pruning and sheet downsampling act on the topo layers' weight sheets, not on positioned units",
}
VISION_GRID_ONLY = {
    "pinwheels": "TDANN's pinwheel detector reads an image of the orientation map",
    "spatial_entropy": "All-TNN's spatial entropy of a lattice neighbourhood",
    "cluster_radius": "All-TNN's cluster radius on the lattice",
    "radial_spectrum_slope": "the radial power spectrum of the map's image",
}


def left_out(kind: str, gratings: bool) -> dict[str, str]:
    """The measures a positioned layer leaves out, with why."""
    return {**GRID_ONLY, **(VISION_GRID_ONLY if kind == "vision" and gratings else {})}


def window_width(layer: PositionedLayer, positions: PositionSet, ev: EvalSettings) -> float:
    """eval.positions.windows.width, with auto: TDANN's 1.5 mm, or for TopoLM one window over the layer's sheet (its
    shorter side: TDANN's windows are squares)."""
    if ev.positions.windows.width is not None:
        return float(ev.positions.windows.width)
    if positions.format == "tdann":
        return WINDOW_WIDTH_MM
    return float(np.ptp(layer.coordinates, axis=0).min())


def tdann_smoothness(values: np.ndarray, layer: PositionedLayer, sampling: SampleSettings, seed: int,
                     eligible: np.ndarray | None = None, period: float | None = None) -> dict[str, Any]:
    """TDANN's smoothness of a map at the layer's coordinates, sampled as TDANN's analyses sample (`sampling`), over
    the eligible units with a finite value (TDANN's t is 0 where ours is infinite: a unit without variance), with the
    bins its curves resolved; None with 0 bins when fewer than two units are left."""
    finite = np.isfinite(values)
    keep = finite if eligible is None else finite & eligible
    out = {"tdann_units_eligible": int(keep.sum()), "tdann_units_not_finite": int((~finite).sum())}
    if keep.sum() < 2:
        return {"tdann_smoothness": None, "tdann_bins": 0, **out}
    size = min(sampling.sample_size, len(values))
    _, curves = tdann_curves_at(np.where(finite, values, 0.0), layer.coordinates, num_samples=sampling.num_samples,
                                sample_size=size, distance_cutoff=sampling.distance_cutoff, seed=seed, period=period,
                                eligible=keep)
    return {"tdann_smoothness": mean_smoothness(curves), "tdann_bins": min(leading_bins(c) for c in curves),
            **out, "tdann_samples": sampling.num_samples, "tdann_sample_size": size}


def t_map_patches(t: np.ndarray, layer: PositionedLayer) -> dict[str, Any]:
    """TDANN's patches of a t map on its positions in mm: their number and areas (mm²); None when a t is not
    finite."""
    patches = find_patches_at(t, layer.coordinates)
    if patches is None:
        return {"patches": None, "patch_areas_mm2": []}
    return {"patches": len(patches), "patch_areas_mm2": [p.area for p in patches]}


def layer_maps(responses: np.ndarray, layer: PositionedLayer, positions: PositionSet, ev: EvalSettings,
               seed: int) -> dict[str, Any]:
    """ED of the layer's recorded units and their response correlation vs distance in TDANN's windows."""
    w = ev.positions.windows
    result = correlation_smoothness_at(responses, layer.coordinates, ev.smoothness, window_width(layer, positions, ev),
                                       w.window_number_limit, w.unit_number_limit, w.edge_buffer, w.num_bins, seed)
    return {"units": layer.total, "units_recorded": int(len(layer.units)), "length_unit": positions.length_unit,
            "effective_dimensionality": effective_dimensionality(responses),
            "response_smoothness": result.value, "response_similarity_curve": result.curve,
            "left_out": left_out(ev.kind, ev.gratings)}


def t_limit(maps: Sequence[np.ndarray]) -> float:
    """The largest finite |t| over the maps (1 when there is none): one symmetric colour range for all of them."""
    peaks = [float(np.abs(t[np.isfinite(t)]).max()) for t in maps if np.isfinite(t).any()]
    return max(peaks, default=0.0) or 1.0


def layer_seeds(layers: Sequence[PositionedLayer], seed: int) -> dict[str, int]:
    """One seed per layer, derived from the run's."""
    return {layer.name: seed + k for k, layer in enumerate(layers)}
