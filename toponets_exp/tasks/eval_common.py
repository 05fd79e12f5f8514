"""Analyses shared by the vision and language evaluations: weight maps, responses, efficiency, report helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from toponets_exp.brain import (effective_dimensionality, plot_bar, plot_curves, plot_similarity_curves,
                                plot_weight_sheet, response_profiles, smoothness)
from toponets_exp.brain.efficiency import downsampling_curve, pruning_curve
from toponets_exp.topo import TopoLayer, unit_matrix


def jsonable(value: Any) -> Any:
    """Numbers, arrays and dataclasses as JSON-ready Python (NaN/inf become None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return jsonable(np.asarray(value).tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def file_name(layer: str) -> str:
    """A layer name as a file-name part."""
    return layer.replace(".", "_")


def weight_maps(layers: Sequence[TopoLayer], ev: Mapping[str, Any], figures: Path) -> dict[str, dict[str, Any]]:
    """Per topo layer: weight-sheet smoothness with its full c(d) curve; sheet images and the curves figure."""
    out, curves = {}, {}
    for layer in layers:
        vectors = unit_matrix(layer.param.detach().float().cpu(), layer.unit_dim).numpy()
        result = smoothness(vectors, layer.sheet, ev["smoothness"], ev["max_pairs"], ev["seed"])
        curves[layer.name] = result.curve
        out[layer.name] = {"sheet": list(layer.sheet), "weight_smoothness": result.value,
                           "weight_similarity_curve": result.curve}
        plot_weight_sheet(vectors, layer.sheet, figures / f"weight_sheet_{file_name(layer.name)}.png",
                          f"{layer.name} weights ({layer.sheet[0]}x{layer.sheet[1]} sheet)")
    plot_similarity_curves(curves, figures / "similarity_vs_distance.png",
                           "Weight similarity vs sheet distance, c(d)")
    return out


def response_maps(layers: Sequence[TopoLayer], responses: Mapping[str, np.ndarray], ev: Mapping[str, Any],
                  report: dict[str, dict[str, Any]], figures: Path) -> None:
    """Per layer: effective dimensionality and functional (response-profile) smoothness; the ED figure."""
    for layer in layers:
        acts = responses[layer.name]
        entry = report.setdefault(layer.name, {"sheet": list(layer.sheet)})
        entry["effective_dimensionality"] = effective_dimensionality(acts)
        entry["response_smoothness"] = smoothness(response_profiles(acts), layer.sheet, ev["smoothness"],
                                                  ev["max_pairs"], ev["seed"]).value
    plot_bar({name: report[name]["effective_dimensionality"] for name in responses}, figures / "effective_dim.png",
             "Effective dimensionality of responses", "ED")


def downsample_pairs(net: nn.Module, layers: Sequence[TopoLayer], next_of: Mapping[str, str]) -> list[list[str]]:
    """(topo layer, the map it feeds) pairs by leaf-name convention, e.g. conv1 -> conv2, c_fc -> c_proj.

    Only plain Linear / Conv2d / HF Conv1D maps qualify (a BlurPool-wrapped strided conv is left out)."""
    modules = dict(net.named_modules())
    plain = lambda m: isinstance(m, (nn.Linear, nn.Conv2d)) or type(m).__name__ == "Conv1D"  # noqa: E731
    pairs = []
    for layer in layers:
        prefix, _, leaf = layer.name.rpartition(".")
        nxt = f"{prefix}.{next_of[leaf]}" if prefix and leaf in next_of else None
        if nxt in modules and plain(modules[layer.name]) and plain(modules[nxt]):
            pairs.append([layer.name, nxt])
    return pairs


def weight_owners(net: nn.Module, layers: Sequence[TopoLayer]) -> list[str]:
    """Name of the module that directly owns each topo layer's `weight` parameter (e.g. the conv in a wrapper)."""
    owners = {id(p): name for name, m in net.named_modules() for pname, p in m.named_parameters(recurse=False)
              if pname == "weight"}
    return [owners[id(layer.param)] for layer in layers if id(layer.param) in owners]


def efficiency(net: nn.Module, layers: Sequence[TopoLayer], ev: Mapping[str, Any], metric: str,
               evaluate: Callable[[nn.Module], float], figures: Path) -> dict[str, Any]:
    """Task metric under L1 pruning of the topo layers and under sheet downsampling of (layer, next) pairs."""
    pruning = pruning_curve(net, weight_owners(net, layers), ev["pruning"], evaluate=evaluate)
    plot_curves(list(pruning), {metric: list(pruning.values())}, figures / "pruning.png",
                "Task metric vs L1 pruning of the topo layers", "sparsity", metric)
    out: dict[str, Any] = {"metric": metric, "pruning": pruning}
    pairs = downsample_pairs(net, layers, ev["downsample_next"])
    factors = [k for k in ev["downsampling"] if all(l.sheet[0] % k == 0 and l.sheet[1] % k == 0
                                                     for l in layers if l.name in {p[0] for p in pairs})]
    if pairs and factors:
        curve = downsampling_curve(net, pairs, factors, evaluate=evaluate)
        out["downsampling"] = {"pairs": pairs, "curve": curve}
        plot_curves([row["kept_fraction"] for row in curve], {metric: [row["metric"] for row in curve]},
                    figures / "downsampling.png", "Task metric vs sheet downsampling", "fraction of weights kept",
                    metric)
    return out


def mean_of(report: Mapping[str, Mapping[str, Any]], key: str) -> float | None:
    """Mean of a per-layer number over the layers that have it."""
    values = [entry[key] for entry in report.values() if entry.get(key) is not None and np.isfinite(entry[key])]
    return float(np.mean(values)) if values else None
