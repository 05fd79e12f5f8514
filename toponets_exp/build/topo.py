"""The topographic losses of `topo=`: its layer selection (which layers, φ, τ, loss) and the callback that trains
them (reduction, τ schedule, overlap, spatial loss, unit positions)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from torch import nn

from toponets_exp.errors import ConfigError
from toponets_exp.resume.stop import stop_if_caught
from toponets_exp.topo import TopoLayer, TopoLossCallback
from toponets_exp.topo.selection import matches as _matches, select_configured
from toponets_exp.topo.tdann_hooks import TDANNSpatial

CONF_MODEL = Path(__file__).resolve().parents[2] / "conf" / "model"
EMBEDDED_DATA = {"vision": "digits", "language": "text_embedded"}  # what each kind of model trains on offline
SELECTION = ("loss", "weight", "layers", "factor")
CALLBACK = ("reduction", "overlap", "positions", "swapopt", "schedule", "spatial", "tdann")
TDANN = "tdann"  # topo.loss of TDANN's loss on blocks at TDANN positions (toponets_exp.build.tdann)
PLACEMENT_STOPPED = "before training, nothing saved; the requeued job places the units again"  # a stopped placement


def _plain(node: Any) -> Any:
    """A config node as plain Python containers."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def check_topo_keys(cfg: DictConfig) -> None:
    """`topo` holds the keys of the layer selection and of the callback, and no other."""
    unknown = sorted(set(cfg.topo) - set(SELECTION + CALLBACK))
    if unknown:
        raise ConfigError(f"topo has unknown key(s) {', '.join(unknown)}; accepted: {', '.join(SELECTION + CALLBACK)}")


def select_topo_layers(cfg: DictConfig, net: nn.Module) -> list[TopoLayer]:
    """The backbone's topo layers: `topo.layers` patterns with factor φ `topo.factor`, τ `topo.weight` and loss
    `topo.loss` unless an item sets its own (a bad selection is a ConfigError, before anything is trained)."""
    check_topo_keys(cfg)
    _check_own_layers(cfg, net)
    if cfg.topo.loss != TDANN:
        return select_configured(cfg.topo, net)
    measured = cfg.topo.copy()  # TDANN's loss trains the blocks of topo.tdann; topo.layers' sheets are measured
    with open_dict(measured):
        measured.loss, measured.weight = "topoloss", 0.0
    return select_configured(measured, net)


def _patterns(layers: Any) -> list[str]:
    """The name patterns of a topo.layers list (bare strings or items with `pattern`; others are the selection's to
    refuse)."""
    items = _plain(layers) if isinstance(layers, (ListConfig, list)) else []
    return [str(item["pattern"] if isinstance(item, Mapping) else item) for item in items
            if isinstance(item, str) or (isinstance(item, Mapping) and "pattern" in item)]


def _named(patterns: list[str], net: nn.Module) -> bool:
    """Whether every pattern names a module of `net`."""
    names = [name for name, _ in net.named_modules() if name]
    return all(any(_matches(p, n) for n in names) for p in patterns)


def _models_naming(cfg: DictConfig, patterns: list[str]) -> list[str]:
    """The model options every pattern names a module of (each built on the meta device: no weights), with the
    embedded data of their kind: what to run a topo option with layers of its own on."""
    fits = []
    for option in sorted(CONF_MODEL.glob("*.yaml")):
        trial = cfg.copy()
        with open_dict(trial):
            trial.model = OmegaConf.load(option)
        try:
            with torch.device("meta"):
                net = instantiate(trial.model.net, _convert_="all")
        except Exception:  # noqa: BLE001 - a model that cannot be built here is simply not suggested
            continue
        if _named(patterns, net):
            kind = str(trial.model.get("eval", {}).get("kind", "vision"))
            fits.append(f"model={option.stem} data={EMBEDDED_DATA[kind]}")
    return fits


def _check_own_layers(cfg: DictConfig, net: nn.Module) -> None:
    """A topo option with layers of its own (topo=topolm) on a model none of whose modules they name, but another
    model's: one line saying which models they are for and how to run one (else the selection lists this model's
    layers)."""
    patterns = _patterns(cfg.topo.layers)
    if not patterns or patterns == _patterns(cfg.model.get("topo_layers")) or any(_named([p], net) for p in patterns):
        return
    fits = _models_naming(cfg, patterns)
    if not fits:  # no model's: the selection names the layers this model has
        return
    choice = HydraConfig.get().runtime.choices.get("topo") if HydraConfig.initialized() else None
    raise ConfigError(f"{f'topo={choice}' if choice else 'topo.layers'} selects {', '.join(patterns)}, which name no "
                      f"layer of {type(net).__name__}: they are another model's; run it with {' or '.join(fits)}")


def build_topo(cfg: DictConfig, layers: list[TopoLayer], tdann: TDANNSpatial | None = None) -> TopoLossCallback:
    """The callback that trains the selected layers (and TDANN's blocks, `tdann`), configured by the rest of `topo`,
    seeded with `seed`; its unit placement stops between two swaps on a Slurm signal."""
    topo = cfg.topo
    return TopoLossCallback(layers, reduction=topo.reduction,
                            schedule=instantiate(topo.schedule, _convert_="all"), overlap=topo.overlap,
                            spatial=_plain(topo.spatial), seed=cfg.seed, positions=topo.positions,
                            swapopt=_plain(topo.swapopt),
                            placement_safe_point=placement_safe_point(), tdann=tdann)


def placement_safe_point() -> Callable[[], None]:
    """A safe point of a unit placement: a Slurm signal stops the run there, nothing saved."""
    return partial(stop_if_caught, "unit placement", PLACEMENT_STOPPED)
