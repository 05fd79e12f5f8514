"""The run's data module, and the check that it gives what the model reads."""

from __future__ import annotations

import pydoc
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from toponets_exp.errors import ConfigError

CONF_DATA = Path(__file__).resolve().parents[2] / "conf" / "data"
PROVIDES = {"vision": ("num_classes", "labelled images"), "language": ("vocab_size", "token ids")}


def _data_keys(option: Path) -> set[str]:
    """The keys a conf/data option sets, with those of the data options in its defaults list."""
    node = OmegaConf.load(option)
    keys = set(node) - {"defaults"}
    for entry in node.get("defaults", []):
        if isinstance(entry, str) and (option.parent / f"{entry}.yaml").is_file():
            keys |= _data_keys(option.parent / f"{entry}.yaml")
    return keys


def uses_labels(cfg: DictConfig) -> bool:
    """Whether the LightningModule of `model.lit` trains on the data's labels (its class's `uses_labels`, true unless
    it says otherwise, as SimCLR does)."""
    target = pydoc.locate(str(cfg.model.get("lit", {}).get("_target_", "")))
    return bool(getattr(target, "uses_labels", True))


def check_model_data(cfg: DictConfig) -> None:
    """An image model needs labelled images and a language model token ids: else one line naming the data options
    that fit (`data.num_classes` marks image classification data, `data.vocab_size` text data). A model trained
    without the labels (SimCLR) need not have an output per class."""
    kind = str(cfg.model.get("eval", {}).get("kind", "vision"))
    key, what = PROVIDES[kind]
    if key in cfg.data:
        if uses_labels(cfg):
            check_output_size(cfg, key)
        return
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    model, data = choices.get("model", "this model"), choices.get("data", "this data")
    fitting = sorted(p.stem for p in CONF_DATA.glob("*.yaml") if key in _data_keys(p))
    raise ConfigError(f"model={model} reads {what}, which data={data} does not give (no data.{key}); use "
                      f"data={' | '.join(fitting)}")


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The LightningDataModule of `data=`."""
    return instantiate(cfg.data, _convert_="all")


def check_output_size(cfg: DictConfig, key: str) -> None:
    """A classifier has one output per class of the data (model.net.num_classes = data.num_classes); a language
    model's vocabulary holds the data's (model.net.vocab_size >= data.vocab_size, padded sizes allowed)."""
    model_size, data_size = cfg.model.net.get(key), cfg.data[key]
    if model_size is None or data_size is None:
        return
    fits = model_size == data_size if key == "num_classes" else model_size >= data_size
    if not fits:
        relation = "=" if key == "num_classes" else ">="
        raise ConfigError(f"model.net.{key}={model_size} does not fit data.{key}={data_size}: the model needs "
                          f"model.net.{key} {relation} data.{key} (by default it follows data.{key}: drop the override)")
