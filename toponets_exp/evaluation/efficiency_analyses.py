"""Task metric under pruning of the topo layers and under downsampling of their sheets."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from toponets_exp.brain.efficiency import DOWNSAMPLING_AXIS, PRUNING_AXIS
from toponets_exp.brain.plots import plot_curves, plot_downsampling
from toponets_exp.evaluation.context import phase
from toponets_exp.evaluation.downsampling import downsampling_curve
from toponets_exp.evaluation.pruning import pruning_curve
from toponets_exp.evaluation.settings import EvalSettings
from toponets_exp.topo import TopoLayer
from toponets_exp.topo.module_types import is_hf_conv1d


def downsample_pairs(net: nn.Module, layers: Sequence[TopoLayer],
                     downsample: Mapping[str, Mapping[str, str | None]]) -> list[list[str]]:
    """(topo layer, the map it feeds[, the BatchNorm between]) triples from model.eval.downsample (leaf names).

    Only plain Linear / Conv2d / HF Conv1D maps qualify (a BlurPool-wrapped strided conv is left out)."""
    modules = dict(net.named_modules())
    plain = lambda m: isinstance(m, (nn.Linear, nn.Conv2d)) or is_hf_conv1d(m)  # noqa: E731
    pairs = []
    for layer in layers:
        prefix, _, leaf = layer.name.rpartition(".")
        if not prefix or leaf not in downsample or layer.order is not None:  # merges units of neighbouring indices
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


def efficiency(net: nn.Module, layers: Sequence[TopoLayer], ev: EvalSettings,
               downsample: Mapping[str, Mapping[str, str | None]], metric: str,
               evaluate: Callable[[nn.Module], float], figures: Path,
               chance: tuple[float, str] | None = None) -> dict[str, Any]:
    """Task metric under L1 pruning of the topo layers and under sheet downsampling of (layer, next) pairs; the
    figures draw `chance` (the metric of a guess, and what guess) as a line."""
    phase("%s under L1 pruning of the topo layers (sparsities %s)", metric, list(ev.pruning))
    pruning = pruning_curve(net, weight_owners(net, layers), ev.pruning, evaluate=evaluate)
    plot_curves(list(pruning), {metric: list(pruning.values())}, figures / "pruning.png",
                f"Task metric vs L1 pruning of the {len(layers)} topo layers", PRUNING_AXIS, metric, chance)
    out: dict[str, Any] = {"metric": metric, "pruning": pruning}
    if chance is not None:
        out["chance"] = {"value": chance[0], "what": chance[1]}
    pairs = downsample_pairs(net, layers, downsample)
    factors = [k for k in ev.downsampling if all(l.sheet[0] % k == 0 and l.sheet[1] % k == 0
                                                     for l in layers if l.name in {p[0] for p in pairs})]
    if pairs and factors:
        phase("%s under sheet downsampling of %d layer pairs (factors %s)", metric, len(pairs), factors)
        curve = downsampling_curve(net, pairs, factors, evaluate=evaluate)
        out["downsampling"] = {"pairs": pairs, "curve": curve}
        plot_downsampling(curve, figures / "downsampling.png", metric,
                          f"Task metric vs sheet downsampling (measured at factors {factors})",
                          f"downsampling factor k (k×k sheet blocks pooled into one unit)\nunder each k: "
                          f"{DOWNSAMPLING_AXIS}", chance)
    return out
