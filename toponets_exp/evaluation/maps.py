"""Maps on the sheet: weight and response smoothness, ED, TGI, and the TDANN statistics of a selectivity map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toponets_exp.brain import (effective_dimensionality, plot_bar, plot_similarity_curves, plot_weight_sheet,
                                response_profiles, smoothness)
from toponets_exp.brain.patches import find_patches
from toponets_exp.brain.tdann import leading_bins, mean_smoothness, tdann_curves
from toponets_exp.brain.topoformer import topoformer_tgi
from toponets_exp.evaluation.context import Section, file_name, stop_point
from toponets_exp.evaluation.settings import EvalSettings
from toponets_exp.topo import TopoLayer, unit_matrix


def map_tdann_smoothness(values: np.ndarray, sheet: Sequence[int], ev: EvalSettings,
                         period: float | None = None) -> tuple[float, int]:
    """TDANN smoothness of a map (a selectivity map; with `period`, a cyclic one) with the eval.tdann settings, and the
    fewest bins a sample's curve kept before its first empty bin (NaN, with 0 bins, when some value is not finite)."""
    if not np.all(np.isfinite(values)):
        return float("nan"), 0
    tdann = ev.tdann
    _, curves = tdann_curves(values, tuple(sheet), tdann.num_bins, tdann.num_samples, tdann.sample_size,
                             tdann.distance_cutoff, seed=ev.seed, period=period)
    return mean_smoothness(curves), min(leading_bins(curve) for curve in curves)


def map_patches(t_map: np.ndarray, sheet: Sequence[int]) -> dict[str, Any]:
    """TDANN's patches of a selectivity t map: their number and areas (units²); None and [] when a t is not
    finite."""
    patches = find_patches(np.asarray(t_map).reshape(tuple(sheet)))
    if patches is None:
        return {"patches": None, "patch_areas": []}
    return {"patches": len(patches), "patch_areas": [p.area for p in patches]}


def unresolved_note(layers: Sequence[TopoLayer], bins: Mapping[str, Sequence[int]], ev: EvalSettings) -> str | None:
    """What the report says of the sheets too small a lattice for TDANN's bins (`bins`: each layer's leading bins per
    map), None when there are none: an empty second bin makes the value 1 by construction (equal-width bins narrower
    than the gaps between the lattice's distances)."""
    small = [f"{layer.name} {layer.sheet[0]}x{layer.sheet[1]}" for layer in layers
             if any(b == 1 for b in bins.get(layer.name, ()))]
    if not small:
        return None
    return (f"TDANN smoothness: {len(small)} sheet(s) too small for eval.tdann.num_bins={ev.tdann.num_bins} "
            f"({', '.join(small)}): the second distance bin is empty, so the value is 1 by construction there and "
            f"left out of the aggregate (tdann_maps_left_out); fewer bins resolve them")


def weight_maps(layers: Sequence[TopoLayer], ev: EvalSettings, figures: Path) -> Section:
    """Per topo layer: weight-sheet smoothness with its full c(d) curve, and the sheet's image."""
    out: Section = {}
    for layer in layers:
        stop_point()
        vectors = layer.on_sheet(unit_matrix(layer.param.detach().float().cpu(), layer.unit_dim)).numpy()
        result = smoothness(vectors, layer.sheet, ev.smoothness, ev.max_pairs, ev.seed)
        out[layer.name] = {"sheet": list(layer.sheet), "weight_smoothness": result.value,
                           "weight_similarity_curve": result.curve}
        plot_weight_sheet(vectors, layer.sheet, figures / f"weight_sheet_{file_name(layer.name)}.png",
                          f"{layer.name} weights ({layer.sheet[0]}x{layer.sheet[1]} sheet)")
    return out


def response_maps(layers: Sequence[TopoLayer], responses: Mapping[str, np.ndarray], ev: EvalSettings,
                  weights: Section, figures: Path, features: Mapping[str, np.ndarray] | None = None) -> Section:
    """Per layer: effective dimensionality (of `features`, default the responses), functional (response-profile)
    smoothness with its c(d) curve and Topoformer's TGI; the ED figure and the c(d) figure of the weights (the
    `weights` section's curves) and the responses."""
    features = features or responses
    out: Section = {}
    for layer in layers:
        stop_point()
        result = smoothness(response_profiles(responses[layer.name]), layer.sheet, ev.smoothness, ev.max_pairs,
                            ev.seed)
        tgi = topoformer_tgi(responses[layer.name], layer.sheet, seed=ev.seed)
        out[layer.name] = {"effective_dimensionality": effective_dimensionality(features[layer.name]),
                           "response_smoothness": result.value, "response_similarity_curve": result.curve,
                           "topoformer_tgi": tgi.tgi, "topoformer_tgi_per_cutoff": tgi.per_cutoff}
    panels = {"weights": {name: entry["weight_similarity_curve"] for name, entry in weights.items()
                          if "weight_similarity_curve" in entry},
              "response profiles": {name: entry["response_similarity_curve"] for name, entry in out.items()}}
    plot_similarity_curves(panels, figures / "similarity_vs_distance.png", "Unit similarity vs sheet distance, c(d)")
    plot_bar({name: entry["effective_dimensionality"] for name, entry in out.items()}, figures / "effective_dim.png",
             "Effective dimensionality of responses", "ED")
    return out
