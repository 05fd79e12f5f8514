"""Select a model's topo layers by name patterns and validate them against their sheets."""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from toponets_exp.checks import choice, number
from toponets_exp.errors import ConfigError
from toponets_exp.topo.blur import check_factor
from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.module_types import is_hf_conv1d, param_unit_dim
from toponets_exp.topo.wiring import has_wiring_cost, wire_layers
from toponets_exp.topo.schedule import Schedule
from toponets_exp.topo.sheet import sheet_shape

log = logging.getLogger(__name__)

def matches(pattern: str, name: str) -> bool:
    """Glob match by default; a `re:` prefix makes the pattern a full-match regular expression."""
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def _factor_pair(key: str, entry: Mapping[str, Any], default: Any) -> tuple[float, float]:
    """(φh, φw) from `factor_h`/`factor_w`, else `factor` (a number or a [h, w] pair), else the default."""
    factor = entry.get("factor", default)
    if isinstance(factor, Sequence) and not isinstance(factor, str):
        if len(factor) != 2:
            raise ConfigError(f"{key}.factor={list(factor)} must be a number or a [factor_h, factor_w] pair")
        fh, fw = factor
    else:
        fh = fw = factor
    fh = entry.get("factor_h", fh)
    fw = entry.get("factor_w", fw)
    return number(f"{key}.factor_h", fh, 1.0), number(f"{key}.factor_w", fw, 1.0)


ENTRY_KEYS = {"pattern", "factor", "factor_h", "factor_w", "weight", "param", "loss", "schedule", "side"}
LOSSES = ("topoloss", "spatial_correlation", "wiring")
SIDES = ("output", "input")


def _entry(item: Any) -> dict[str, Any]:
    """A `topo.layers` item as a dict: a bare string is a pattern."""
    if isinstance(item, str):
        return {"pattern": item}
    if isinstance(item, Mapping) and "pattern" in item:
        unknown = sorted(set(item) - ENTRY_KEYS)
        if unknown:
            raise ConfigError(f"topo.layers item {dict(item)!r} has unknown key(s) {', '.join(map(str, unknown))}; "
                              f"accepted: {', '.join(sorted(ENTRY_KEYS))}")
        return dict(item)
    raise ConfigError(
        f"topo.layers item {item!r} must be a name pattern or a mapping with 'pattern' "
        "(and optional factor, factor_h, factor_w, weight, param, side, loss, schedule)"
    )


def _listing(names: list[str], limit: int = 60) -> str:
    """Names for an error message, truncated."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... and {len(names) - limit} more" if len(names) > limit else "")


def check_loss(key: str, name: Any) -> str:
    """`name` if it names a topographic loss; else '<key>=<name> is not a topographic loss; use one of ...'."""
    if name not in LOSSES:
        raise ConfigError(f"{key}={name!r} is not a topographic loss; use one of {', '.join(LOSSES)}")
    return name


def _loss_and_schedule(key: str, entry: Mapping[str, Any], loss: str) -> tuple[str, Schedule | None]:
    """The item's loss (default `loss`) and its own τ schedule, if any, validated."""
    name = check_loss(f"{key}.loss", entry.get("loss", loss))
    schedule = entry.get("schedule")
    if schedule is not None and not isinstance(schedule, Schedule):
        raise ConfigError(f"{key}.schedule={schedule!r} is not a τ schedule; give a mapping with _target_ (e.g. "
                          "toponets_exp.topo.LinearWarmup) and its arguments")
    return name, schedule


def _item_sheet(key: str, entry: Mapping[str, Any], loss: str) -> tuple[str | None, str]:
    """The item's `param` and `side`, checked together and against its loss."""
    param_name, side = entry.get("param"), choice(f"{key}.side", entry.get("side", "output"), SIDES)
    if param_name is not None and not isinstance(param_name, str):
        raise ConfigError(f"{key}.param={param_name!r} must be the name of a parameter of the layer (e.g. bias)")
    if side == "input" and param_name == "bias":
        raise ConfigError(f"{key}: side=input and param=bias exclude each other (a bias has no input side)")
    if loss != "topoloss" and (side == "input" or param_name == "bias"):  # a wiring layer's units are its outputs
        raise ConfigError(f"{key}: side=input and param=bias are TopoLoss sheets (loss: topoloss), not {loss}")
    return param_name, side


def _sheet_param(key: str, name: str, module: nn.Module, param_name: str | None, side: str) -> tuple[str, int]:
    """(parameter, unit axis) of the sheet an item asks for on the module `name`, or a ConfigError saying why not.

    As topoloss's LaplacianPyramidOnBias and LaplacianPyramidOnInput: a bias sheet and an input sheet are those of a
    Linear (here also a transformers Conv1D, the same map stored transposed); an input sheet also of any matrix
    named by `param`.
    """
    linear = isinstance(module, nn.Linear) or is_hf_conv1d(module)
    kind = type(module).__name__
    if param_name == "bias":
        if not linear:
            raise ConfigError(f"{key}: param=bias needs a Linear (or transformers Conv1D) layer; {name!r} is a {kind}")
        if not isinstance(getattr(module, "bias", None), torch.Tensor):
            raise ConfigError(f"{key}: param=bias, but {name!r} ({kind}) has no bias")
        return "bias", 0
    unit_dim = param_unit_dim(module, param_name)
    if unit_dim is None:
        raise ConfigError(
            f"{key} matches {name!r} of type {kind}, which has no sheet; supported: Linear, Conv1d/2d/3d, "
            "transformers Conv1D, or any module with 'param' naming its weight attribute. Make the pattern more "
            "specific."
        )
    pname = param_name or "weight"
    param = getattr(module, pname, None)
    if param is None or getattr(param, "ndim", 0) < 2:
        raise ConfigError(f"{key}: {name!r} has no >=2-D parameter {pname!r}")
    if side == "input":
        if param.ndim != 2 or not (linear or param_name is not None):
            raise ConfigError(f"{key}: side=input needs a matrix (a Linear, a transformers Conv1D, or 'param' naming "
                              f"one); {name!r} ({kind}) has a {param.ndim}-D {pname}")
        unit_dim = 1 - unit_dim
    return pname, unit_dim


def select_layers(net: nn.Module, layers: Sequence[Any], factor: Any, weight: float,
                  loss: str = "topoloss") -> list[TopoLayer]:
    """Resolve `topo.layers` patterns over `net.named_modules()` into validated TopoLayers.

    An item's `loss` (default `loss`, i.e. topo.loss) names what acts on the layer; one layer may be selected once
    per loss. The layers of loss=wiring are consecutive: the first places the second's inputs (`wire_layers`).
    """
    check_loss("topo.loss", loss)
    if not layers:
        raise ConfigError("topo.layers is empty; give at least one module-name pattern (glob, or 're:' regex)")
    modules = dict(net.named_modules())
    selected: dict[tuple[str, str], TopoLayer] = {}
    for i, item in enumerate(layers):
        entry = _entry(item)
        key = f"topo.layers[{i}]"
        pattern = str(entry["pattern"])
        fh, fw = _factor_pair(key, entry, factor)
        tau = number(f"{key}.weight", entry["weight"], 0.0) if "weight" in entry else weight
        item_loss, schedule = _loss_and_schedule(key, entry, loss)
        param_name, side = _item_sheet(key, entry, item_loss)
        names = [n for n in modules if n and matches(pattern, n)]
        if not names:
            candidates = [n for n, m in modules.items() if n and any(True for _ in m.parameters(recurse=False))]
            raise ConfigError(
                f"{key}={pattern!r} matches no layer of {type(net).__name__}. Layers with parameters: "
                f"{_listing(candidates)}"
            )
        for name in names:
            module = modules[name]
            pname, unit_dim = _sheet_param(f"{key}={pattern!r}", name, module, param_name, side)
            units = getattr(module, pname).shape[unit_dim]
            sheet = sheet_shape(units)
            where = f" of layer {name!r} (sheet {sheet[0]}x{sheet[1]} for {units} units)"
            try:
                fh_ok = check_factor(fh, sheet[0], "h", where)
                fw_ok = check_factor(fw, sheet[1], "w", where)
            except ValueError as err:
                raise ConfigError(f"topo.factor: {err}") from None
            layer = TopoLayer(name, module, pname, unit_dim, fh_ok, fw_ok, tau, sheet, item_loss, schedule, side)
            if (layer.key, item_loss) in selected:
                raise ConfigError(f"{key}={pattern!r} selects {layer.key!r}, which an earlier topo.layers item "
                                  f"selects for the same loss ({item_loss})")
            selected[(layer.key, item_loss)] = layer
    return wire_layers(list(selected.values()))


def output_sheet(layer: TopoLayer) -> TopoLayer:
    """The output sheet of the layer's module: the layer itself, or for an input or bias sheet its weight's units."""
    if layer.side == "output" and not layer.whole:
        return layer
    unit_dim = param_unit_dim(layer.module, None)
    return replace(layer, param_name="weight", unit_dim=unit_dim, side="output",
                   sheet=sheet_shape(layer.module.weight.shape[unit_dim]))


def weight_layers(selected: Sequence[TopoLayer]) -> list[TopoLayer]:
    """The layers a loss on the weights trains: TopoLoss's, and those with a wiring cost."""
    return [layer for layer in selected if layer.loss == "topoloss" or has_wiring_cost(layer)]


def trainable(weights: Sequence[TopoLayer], others: bool) -> list[TopoLayer]:
    """The weight layers that get gradients: frozen ones (requires_grad=False) left out with one warning naming them,
    a ConfigError if none is left and no other loss trains (`others`)."""
    frozen = [layer.key for layer in weights if not layer.param.requires_grad]
    if frozen:
        if len(frozen) == len(weights) and not others:
            raise ConfigError(f"topo.layers selects only frozen layers (requires_grad=False): {', '.join(frozen)}")
        log.warning("TopoLoss skips %d frozen layer(s) (requires_grad=False), left out of its mean: %s",
                    len(frozen), ", ".join(frozen))
    return [layer for layer in weights if layer.param.requires_grad]


def measured_sheets(selected: Sequence[TopoLayer], trained: set[str]) -> list[TopoLayer]:
    """TopoLoss (τ 0) of the output sheets that other losses train and TopoLoss does not: measured, not trained."""
    others = [replace(layer, weight=0.0, loss="topoloss", in_sheet=None) for layer in selected
              if layer.loss != "topoloss"]
    return [layer for layer in unique_layers(others) if layer.key not in trained]


def unique_layers(layers: Sequence[TopoLayer]) -> list[TopoLayer]:
    """Each selected module's output sheet once (of the first item that selects it): the layers an evaluation maps.

    An input or bias sheet is trained and measured by TopoLoss; its module is mapped by its output units.
    """
    first: dict[str, TopoLayer] = {}
    for layer in layers:
        if layer.name not in first:
            first[layer.name] = output_sheet(layer)
    return list(first.values())


def select_configured(topo_cfg: DictConfig, net: nn.Module) -> list[TopoLayer]:
    """The backbone's topo layers as `topo=` selects them: `topo.layers` patterns with factor φ `topo.factor`, τ
    `topo.weight` and loss `topo.loss` unless an item sets its own (a bad selection is a ConfigError)."""
    factor = topo_cfg.factor
    if isinstance(factor, (DictConfig, ListConfig)):
        factor = OmegaConf.to_container(factor, resolve=True)
    return select_layers(net, instantiate(topo_cfg.layers, _convert_="all"), factor,
                         number("topo.weight", topo_cfg.weight, 0.0), topo_cfg.loss)
