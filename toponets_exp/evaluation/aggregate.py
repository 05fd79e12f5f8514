"""The report's aggregates: means over the layers or maps where a measure is defined, with the counts used."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

PerLayer = Mapping[str, Mapping[str, Any]]


def finite(value: Any) -> bool:
    """Whether a measured value is a finite number (None and NaN are undefined)."""
    return value is not None and bool(np.isfinite(value))


def finite_mean(values: Iterable[float | None]) -> float | None:
    """Mean of the finite values, None when there is none."""
    kept = [v for v in values if finite(v)]
    return float(np.mean(kept)) if kept else None


def mean_of(per_layer: PerLayer, key: str) -> float | None:
    """Mean of a per-layer number over the layers that have it."""
    return finite_mean(entry.get(key) for entry in per_layer.values())


def counted_mean(key: str, values: list[Any], counts: str, left_out: bool = True) -> dict[str, Any]:
    """`key`: the mean of the finite values; `<counts>_used` (and `<counts>_left_out`): how many it used (left out)."""
    used = [v for v in values if finite(v)]
    out = {key: finite_mean(used), f"{counts}_used": len(used)}
    if left_out:
        out[f"{counts}_left_out"] = len(values) - len(used)
    return out


def selectivity_entries(per_layer: PerLayer) -> list[Mapping[str, Any]]:
    """Every selectivity map's entry: the vision categories' and the language contrast's, layer by layer."""
    maps: list[Mapping[str, Any]] = []
    for entry in per_layer.values():
        maps += list(entry.get("selectivity", {}).values())
        if "language_selectivity" in entry:
            maps.append(entry["language_selectivity"])
    return maps


def resolved_tdann(entry: Mapping[str, Any]) -> float | None:
    """A map's TDANN smoothness where the statistic resolves it: a curve that keeps one bin before an empty one (a
    small lattice sheet) scores 1 by construction, so it is left out (None), as is a map with infinite t."""
    return entry.get("tdann_smoothness") if entry.get("tdann_bins", 0) >= 2 else None


def tdann_aggregate(per_layer: PerLayer) -> dict[str, Any]:
    """Mean TDANN smoothness of the selectivity maps (vision categories, language contrast) it resolves, and how
    many maps it used and left out."""
    return counted_mean("tdann_smoothness", [resolved_tdann(m) for m in selectivity_entries(per_layer)], "tdann_maps")


def map_aggregate(per_layer: PerLayer, key: str) -> dict[str, Any]:
    """Mean of a selectivity-map statistic over the maps where it is defined, with the counts used and left out."""
    return counted_mean(key, [m.get(key) for m in selectivity_entries(per_layer)], f"{key}_maps")


def layer_aggregate(per_layer: PerLayer, key: str) -> dict[str, Any]:
    """Mean of a topo-layer statistic over the layers where it is defined (Topoformer's TGI is undefined on a sheet
    of fewer than 100 units), with the counts used and left out."""
    return counted_mean(key, [entry.get(key) for entry in per_layer.values() if key in entry], f"{key}_layers")


def orientation_aggregate(per_layer: PerLayer) -> dict[str, Any]:
    """Means over the topo layers' orientation maps where each value is defined (TDANN smoothness: resolved maps),
    with the number of maps each mean used; nothing when no grating analysis ran."""
    entries = [entry["orientation"] for entry in per_layer.values() if "orientation" in entry]
    if not entries:
        return {}
    out = {"orientation_selective_fraction": finite_mean(e["fraction_selective"] for e in entries),
           **counted_mean("orientation_tdann_smoothness", [resolved_tdann(e) for e in entries],
                          "orientation_tdann_maps", left_out=False)}
    for key in ("spatial_entropy", "cluster_radius", "radial_spectrum_slope", "pinwheel_density"):
        out.update(counted_mean(key, [e.get(key) for e in entries], f"{key}_maps", left_out=False))
    counted = [e["pinwheels"] for e in entries if e.get("pinwheels") is not None]
    out["pinwheels"] = sum(counted) if counted else None  # None: no map was a lattice to count them on
    out["orientation_maps"] = len(entries)
    return out


def left_out_aggregate(per_layer: PerLayer) -> dict[str, Any]:
    """The grid-only measures left out at explicit positions, with how many layers left each out (nothing on
    sheets)."""
    counts: dict[str, int] = {}
    for entry in per_layer.values():
        for measure in entry.get("left_out", {}):
            counts[measure] = counts.get(measure, 0) + 1
    return {"left_out_layers": dict(sorted(counts.items()))} if counts else {}


def aggregate(per_layer: PerLayer) -> dict[str, Any]:
    """Every aggregate of the report."""
    return {
        **left_out_aggregate(per_layer),
        "weight_smoothness": mean_of(per_layer, "weight_smoothness"),
        "response_smoothness": mean_of(per_layer, "response_smoothness"),
        "effective_dimensionality": mean_of(per_layer, "effective_dimensionality"),
        **tdann_aggregate(per_layer),
        **map_aggregate(per_layer, "morans_i_topolm"),
        **map_aggregate(per_layer, "patches"),
        **layer_aggregate(per_layer, "topoformer_tgi"),
        **orientation_aggregate(per_layer),
    }
