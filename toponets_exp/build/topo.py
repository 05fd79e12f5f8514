"""The topographic losses of `topo=`: its layer selection (which layers, φ, τ, loss) and the callback that trains
them (reduction, τ schedule, overlap, spatial loss, unit positions)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from toponets_exp.errors import ConfigError
from toponets_exp.topo import TopoLayer, TopoLossCallback
from toponets_exp.topo.selection import select_configured

SELECTION = ("loss", "weight", "layers", "factor")
CALLBACK = ("reduction", "overlap", "positions", "swapopt", "schedule", "spatial")


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
    return select_configured(cfg.topo, net)


def build_topo(cfg: DictConfig, layers: list[TopoLayer]) -> TopoLossCallback:
    """The callback that trains the selected layers, configured by the rest of `topo`, seeded with `seed`."""
    topo = cfg.topo
    return TopoLossCallback(layers, reduction=topo.reduction,
                            schedule=instantiate(topo.schedule, _convert_="all"), overlap=topo.overlap,
                            spatial=_plain(topo.spatial), seed=cfg.seed, positions=topo.positions,
                            swapopt=_plain(topo.swapopt))
