"""Analyses shared by the vision and language evaluations: weight maps, responses, efficiency, report helpers."""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from toponets_exp.brain import (effective_dimensionality, plot_bar, plot_curves, plot_similarity_curves,
                                plot_weight_sheet, response_profiles, smoothness)
from toponets_exp.brain.efficiency import DOWNSAMPLING_AXIS, PRUNING_AXIS, downsampling_curve, pruning_curve
from toponets_exp.brain.patches import find_patches
from toponets_exp.brain.tdann import leading_bins, mean_smoothness, tdann_curves
from toponets_exp.brain.topoformer import topoformer_tgi
from toponets_exp.errors import ConfigError
from toponets_exp.topo import TopoLayer, unit_matrix
from toponets_exp.topo.selection import is_hf_conv1d

log = logging.getLogger(__name__)


STD_DDOF = {"sample": 1, "population": 0}  # eval.selectivity_std -> the ddof of t and d′


@dataclass
class EvalContext:
    """Everything the analyses of one evaluation share."""

    net: nn.Module
    layers: Sequence[TopoLayer]
    data: L.LightningDataModule | None   # the task's data, None when it does not fit the model
    data_misfit: str | None              # why not
    ev: dict[str, Any]                   # eval.* (checked)
    model: dict[str, Any]                # model.eval.* (what is specific to the model)
    figures: Path
    device: torch.device
    tokenizer: Any = None                # language: encodes the stimuli (data.tokenizer.TextTokenizer)
    skipped: dict[str, str] = field(default_factory=dict)  # analysis -> why it did not run

    def skip(self, analysis: str, needs: str) -> None:
        """Record an analysis left out because the task's data does not fit the model."""
        self.skipped[analysis] = f"needs {needs}; the task's data does not fit the model ({self.data_misfit})"
        log.warning("Skipped %s: %s", analysis, self.skipped[analysis])


def check_layers(net: nn.Module, names: Sequence[str]) -> None:
    """eval.layers / eval.predictivity_layers must name modules of the model."""
    modules = dict(net.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        close = difflib.get_close_matches(unknown[0], [n for n in modules if n], n=5, cutoff=0.5)
        raise ConfigError(f"eval.layers / eval.predictivity_layers name {unknown[0]!r}, which is not a module of "
                          f"{type(net).__name__}" + (f"; closest: {', '.join(close)}" if close else ""))


def map_tdann_smoothness(values: np.ndarray, sheet: Sequence[int], ev: Mapping[str, Any],
                         period: float | None = None) -> tuple[float, int]:
    """TDANN smoothness of a map (a selectivity map; with `period`, a cyclic one) with the eval.tdann settings, and the
    fewest bins a sample's curve kept before its first empty bin (NaN, with 0 bins, when some value is not finite)."""
    if not np.all(np.isfinite(values)):
        return float("nan"), 0
    _, curves = tdann_curves(values, tuple(sheet), seed=ev["seed"], period=period, **ev["tdann"])
    return mean_smoothness(curves), min(leading_bins(curve) for curve in curves)


def map_patches(t_map: np.ndarray, sheet: Sequence[int]) -> dict[str, Any]:
    """TDANN's patches of a selectivity t map: their number and areas (units²); None and [] when a t is not
    finite."""
    patches = find_patches(np.asarray(t_map).reshape(tuple(sheet)))
    if patches is None:
        return {"patches": None, "patch_areas": []}
    return {"patches": len(patches), "patch_areas": [p.area for p in patches]}


def phase(what: str, *args: Any) -> None:
    """One progress line as an evaluation phase starts."""
    log.info("Evaluation: " + what, *args)


def warn_unresolved(layers: Sequence[TopoLayer], bins: Mapping[str, Sequence[int]], ev: Mapping[str, Any]) -> None:
    """One warning naming every sheet too small a lattice for TDANN's bins (`bins`: each layer's leading bins per
    map): an empty second bin makes the value 1 by construction (equal-width bins narrower than the gaps between the
    lattice's distances)."""
    small = [f"{layer.name} {layer.sheet[0]}x{layer.sheet[1]}" for layer in layers
             if any(b == 1 for b in bins.get(layer.name, ()))]
    if small:
        log.warning("%d sheet(s) too small for eval.tdann.num_bins=%d (%s): the second distance bin is empty, so "
                    "TDANN smoothness is 1 by construction there and left out of the aggregate; fewer bins resolve "
                    "them", len(small), ev["tdann"]["num_bins"], ", ".join(small))


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
    """Per topo layer: weight-sheet smoothness with its full c(d) curve, and the sheet's image."""
    out = {}
    for layer in layers:
        vectors = unit_matrix(layer.param.detach().float().cpu(), layer.unit_dim).numpy()
        result = smoothness(vectors, layer.sheet, ev["smoothness"], ev["max_pairs"], ev["seed"])
        out[layer.name] = {"sheet": list(layer.sheet), "weight_smoothness": result.value,
                           "weight_similarity_curve": result.curve}
        plot_weight_sheet(vectors, layer.sheet, figures / f"weight_sheet_{file_name(layer.name)}.png",
                          f"{layer.name} weights ({layer.sheet[0]}x{layer.sheet[1]} sheet)")
    return out


def response_maps(layers: Sequence[TopoLayer], responses: Mapping[str, np.ndarray], ev: Mapping[str, Any],
                  report: dict[str, dict[str, Any]], figures: Path,
                  features: Mapping[str, np.ndarray] | None = None) -> None:
    """Per layer: effective dimensionality (of `features`, default the responses), functional (response-profile)
    smoothness with its c(d) curve and Topoformer's TGI; the ED figure and the c(d) figure of weights and
    responses."""
    features = features or responses
    for layer in layers:
        entry = report.setdefault(layer.name, {"sheet": list(layer.sheet)})
        entry["effective_dimensionality"] = effective_dimensionality(features[layer.name])
        result = smoothness(response_profiles(responses[layer.name]), layer.sheet, ev["smoothness"], ev["max_pairs"],
                            ev["seed"])
        entry["response_smoothness"], entry["response_similarity_curve"] = result.value, result.curve
        tgi = topoformer_tgi(responses[layer.name], layer.sheet, seed=ev["seed"])
        entry["topoformer_tgi"], entry["topoformer_tgi_per_cutoff"] = tgi.tgi, tgi.per_cutoff
    panels = {title: {layer.name: report[layer.name][key] for layer in layers if key in report[layer.name]}
              for title, key in (("weights", "weight_similarity_curve"),
                                 ("response profiles", "response_similarity_curve"))}
    plot_similarity_curves(panels, figures / "similarity_vs_distance.png", "Unit similarity vs sheet distance, c(d)")
    plot_bar({name: report[name]["effective_dimensionality"] for name in report
              if "effective_dimensionality" in report[name]}, figures / "effective_dim.png",
             "Effective dimensionality of responses", "ED")


def downsample_pairs(net: nn.Module, layers: Sequence[TopoLayer],
                     downsample: Mapping[str, Mapping[str, str | None]]) -> list[list[str]]:
    """(topo layer, the map it feeds[, the BatchNorm between]) triples from model.eval.downsample (leaf names).

    Only plain Linear / Conv2d / HF Conv1D maps qualify (a BlurPool-wrapped strided conv is left out)."""
    modules = dict(net.named_modules())
    plain = lambda m: isinstance(m, (nn.Linear, nn.Conv2d)) or is_hf_conv1d(m)  # noqa: E731
    pairs = []
    for layer in layers:
        prefix, _, leaf = layer.name.rpartition(".")
        if not prefix or leaf not in downsample:
            continue
        nxt, norm = f"{prefix}.{downsample[leaf]['next']}", downsample[leaf].get("norm")
        if nxt in modules and plain(modules[layer.name]) and plain(modules[nxt]):
            pairs.append([layer.name, nxt] + ([f"{prefix}.{norm}"] if norm else []))
    return pairs


def weight_owners(net: nn.Module, layers: Sequence[TopoLayer]) -> list[str]:
    """Name of the module that directly owns each topo layer's `weight` parameter (e.g. the conv in a wrapper)."""
    owners = {id(p): name for name, m in net.named_modules() for pname, p in m.named_parameters(recurse=False)
              if pname == "weight"}
    return [owners[id(layer.param)] for layer in layers if id(layer.param) in owners]


def efficiency(net: nn.Module, layers: Sequence[TopoLayer], ev: Mapping[str, Any],
               downsample: Mapping[str, Mapping[str, str | None]], metric: str,
               evaluate: Callable[[nn.Module], float], figures: Path,
               chance: tuple[float, str] | None = None) -> dict[str, Any]:
    """Task metric under L1 pruning of the topo layers and under sheet downsampling of (layer, next) pairs; the
    figures draw `chance` (the metric of a guess, and what guess) as a line."""
    phase("%s under L1 pruning of the topo layers (sparsities %s)", metric, ev["pruning"])
    pruning = pruning_curve(net, weight_owners(net, layers), ev["pruning"], evaluate=evaluate)
    plot_curves(list(pruning), {metric: list(pruning.values())}, figures / "pruning.png",
                f"Task metric vs L1 pruning of the {len(layers)} topo layers", PRUNING_AXIS, metric, chance)
    out: dict[str, Any] = {"metric": metric, "pruning": pruning}
    if chance is not None:
        out["chance"] = {"value": chance[0], "what": chance[1]}
    pairs = downsample_pairs(net, layers, downsample)
    factors = [k for k in ev["downsampling"] if all(l.sheet[0] % k == 0 and l.sheet[1] % k == 0
                                                     for l in layers if l.name in {p[0] for p in pairs})]
    if pairs and factors:
        phase("%s under sheet downsampling of %d layer pairs (factors %s)", metric, len(pairs), factors)
        curve = downsampling_curve(net, pairs, factors, evaluate=evaluate)
        out["downsampling"] = {"pairs": pairs, "curve": curve}
        plot_curves([row["kept_fraction"] for row in curve], {metric: [row["metric"] for row in curve]},
                    figures / "downsampling.png", f"Task metric vs sheet downsampling (factors {factors})",
                    DOWNSAMPLING_AXIS, metric, chance)
    return out


def finite_mean(values: Iterable[float | None]) -> float | None:
    """Mean of the finite values, None when there is none."""
    kept = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def mean_of(report: Mapping[str, Mapping[str, Any]], key: str) -> float | None:
    """Mean of a per-layer number over the layers that have it."""
    return finite_mean(entry.get(key) for entry in report.values())
