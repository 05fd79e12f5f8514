"""Build the run's objects from the composed config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from toponets_exp.checks import integer, number
from toponets_exp.errors import ConfigError
from toponets_exp.topo import TopoLayer, TopoLossCallback, select_layers
from toponets_exp.topo.selection import select_configured


def _plain(node: Any) -> Any:
    """A config node as plain Python containers."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def seed_and_check(cfg: DictConfig) -> int:
    """Validate `seed` and seed every RNG (python, numpy, torch, dataloader workers)."""
    return L.seed_everything(integer("seed", cfg.seed), workers=True, verbose=False)


CONF_DATA = Path(__file__).resolve().parents[1] / "conf" / "data"
PROVIDES = {"vision": ("num_classes", "labelled images"), "language": ("vocab_size", "token ids")}


def _data_keys(option: Path) -> set[str]:
    """The keys a conf/data option sets, with those of the data options in its defaults list."""
    node = OmegaConf.load(option)
    keys = set(node) - {"defaults"}
    for entry in node.get("defaults", []):
        if isinstance(entry, str) and (option.parent / f"{entry}.yaml").is_file():
            keys |= _data_keys(option.parent / f"{entry}.yaml")
    return keys


def check_model_data(cfg: DictConfig) -> None:
    """An image model needs labelled images and a language model token ids: else one line naming the data options
    that fit (`data.num_classes` marks image classification data, `data.vocab_size` text data)."""
    kind = str(cfg.model.get("eval", {}).get("kind", "vision"))
    key, what = PROVIDES[kind]
    if key in cfg.data:
        return
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    model, data = choices.get("model", "this model"), choices.get("data", "this data")
    fitting = sorted(p.stem for p in CONF_DATA.glob("*.yaml") if key in _data_keys(p))
    raise ConfigError(f"model={model} reads {what}, which data={data} does not give (no data.{key}); use "
                      f"data={' | '.join(fitting)}")


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The LightningDataModule of `data=`."""
    return instantiate(cfg.data, _convert_="all")


SELECTION_KEYS = ("layers", "factor")  # what select_topo_layers reads; the callback receives the layers


def _factory(cfg: DictConfig, key: str) -> Any:
    """The partial of config group `key` (a `_target_` with `_partial_: true`), or a ConfigError naming it."""
    node = cfg[key]
    if not isinstance(node, DictConfig) or "_target_" not in node or not node.get("_partial_", False):
        raise ConfigError(f"{key} must name a callable with _target_ and _partial_: true (conf/{key}/*.yaml)")
    try:
        return instantiate(node, _convert_="all")
    except Exception as err:  # noqa: BLE001 - Hydra wraps import and argument errors alike
        raise ConfigError(f"{key}._target_={node._target_!r} cannot be built: {err}") from None


def build_optim(cfg: DictConfig) -> tuple[Callable[..., torch.optim.Optimizer], Callable[..., Any]]:
    """The optimizer and LR schedule partials of `optim` and `lr_schedule`, tried on one parameter so that a bad
    argument fails now, and a schedule that needs a horizon refused without one."""
    optimizer, lr_schedule = _factory(cfg, "optim"), _factory(cfg, "lr_schedule")
    probe = torch.nn.Parameter(torch.zeros(1))
    try:
        built = optimizer([{"params": [probe]}])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"optim ({cfg.optim._target_}): {err}") from None
    try:
        lr_schedule(built, 1)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"lr_schedule ({cfg.lr_schedule._target_}): {err}") from None
    max_epochs, max_steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps")
    if cfg.lr_schedule._target_.endswith(".warmup_cosine") and max_epochs == -1 and max_steps in (-1, None):
        raise ConfigError("trainer.max_epochs=-1 (no end) leaves lr_schedule=cosine without a horizon: set "
                          "trainer.max_steps or a trainer.max_epochs, or use lr_schedule=constant")
    return optimizer, lr_schedule


def build_module(cfg: DictConfig) -> L.LightningModule:
    """Backbone from `model.net`, wrapped in the LightningModule of `model.lit` with the optimizer and LR schedule."""
    optimizer, lr_schedule = build_optim(cfg)
    net = instantiate(cfg.model.net, _convert_="all")
    if cfg.model.get("channels_last", False):
        net = net.to(memory_format=torch.channels_last)
    return instantiate(cfg.model.lit, net=net, optimizer=optimizer, lr_schedule=lr_schedule, _convert_="all")


def select_topo_layers(cfg: DictConfig, net: nn.Module) -> list[TopoLayer]:
    """The backbone's topo layers: `topo.layers` patterns with factor φ `topo.factor`, τ `topo.weight` and loss
    `topo.loss` unless an item sets its own (a bad selection is a ConfigError, before anything is trained)."""
    return select_configured(cfg.topo, net)


def build_topo(cfg: DictConfig, layers: list[TopoLayer]) -> TopoLossCallback:
    """The topographic-loss callback of `topo` on the selected layers, seeded with `seed`."""
    node = OmegaConf.to_container(cfg.topo, resolve=True)
    for key in SELECTION_KEYS:
        node.pop(key, None)
    return instantiate(node, _convert_="all", _partial_=True)(layers=layers, seed=cfg.seed)


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """Every logger under `logger` (csv always; wandb with logger=wandb, given the resolved config as run config)."""
    loggers = []
    for key, node in cfg.logger.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            if key == "wandb":  # partial, so the run config's own _target_ entries are not instantiated
                make = instantiate(node, _convert_="all", _partial_=True)
                loggers.append(make(run_config=OmegaConf.to_container(cfg, resolve=True)))
            else:
                loggers.append(instantiate(node, _convert_="all"))
    return loggers


def overrides() -> list[str]:
    """The command-line overrides of this run (empty outside a Hydra app)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def output_dir(cfg: DictConfig) -> Path:
    """The run directory (Hydra's), created if needed."""
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path
