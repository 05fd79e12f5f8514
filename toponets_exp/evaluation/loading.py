"""What an evaluation analyses: the model (from a checkpoint, its variant read from the file), and the task's data
when it fits that model (the analyses that need data are skipped, with the reason, when it does not)."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch import nn

from toponets_exp.data.tokenizer import GPT2, ByteTokenizer, TextTokenizer, gpt2_tokenizer
from toponets_exp.errors import CheckpointError, ConfigError
from toponets_exp.models.checkpoints import load_weights, match_state, read_checkpoint
from toponets_exp.models.nanogpt import padded_vocab
from toponets_exp.topo import TopoLayer
from toponets_exp.topo.positions import Placements, place
from toponets_exp.topo.selection import select_configured, unique_layers

log = logging.getLogger(__name__)
GPT2_VOCAB = 50257
OFFICIAL_TAU = re.compile(r"(?:.*_)?tau_([0-9]+(?:\.[0-9]+)?)\.pt")  # murtylab/topo-*: all_topo_tau_10.0.pt


@dataclass(frozen=True)
class EvalModel:
    """The model under evaluation: the backbone, its topo layers, its config, where its weights came from, and what
    that file said about it."""

    net: nn.Module
    layers: Sequence[TopoLayer]
    config: DictConfig            # model.*: the run's, or of a copy with model.net set to the checkpoint's variant
    checkpoint: str
    architecture: dict[str, Any]  # the model.net keys read from the checkpoint ({} when none were)
    topo_weight: float | None     # the τ it was trained with, when known
    model_args: dict[str, Any] = field(default_factory=dict)  # a nanoGPT-style file's model_args (TopoLM's)


@dataclass(frozen=True)
class TaskData:
    """The task's data module when it fits the model, else None and why not; and why the model's outputs are not
    the data's class scores, if they are not (a trunk: its data are stimuli, nothing scores its accuracy)."""

    datamodule: L.LightningDataModule | None
    misfit: str | None = None
    no_classifier: str | None = None


def no_classifier(model: DictConfig) -> str | None:
    """Why a vision model's outputs are no class scores: a trunk (model.net.num_classes 0), else None."""
    if model.net.get("num_classes", None) == 0:
        return "the model is a trunk without a classifier (model.net.num_classes 0)"
    return None


def read_architecture(cfg: DictConfig, path: Path, state: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The model.net keys of the variant the checkpoint was saved from (model.eval.architecture), if it is read."""
    reader = cfg.model.get("eval", {}).get("architecture")
    if not reader or not cfg.eval.architecture_from_checkpoint:
        return {}
    try:
        return instantiate(reader)(state, extra)
    except KeyError as err:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {err}, which a {cfg.model.net._target_} state dict "
                              "has; does model= name the architecture the file was saved from?") from None


def callback_state(extra: dict[str, Any]) -> dict[str, Any]:
    """The TopoLossCallback state our checkpoints hold ({} in other files)."""
    state = extra.get("callbacks", {}).get("TopoLossCallback") if isinstance(extra.get("callbacks"), dict) else None
    return state if isinstance(state, dict) else {}


def trained_topo_weight(path: Path, extra: dict[str, Any]) -> float | None:
    """τ as the file records it: our checkpoints' TopoLossCallback state, or the TopoNets file names
    (`all_topo_tau_10.0.pt`); None when the file does not say."""
    state = callback_state(extra)
    if state.get("weight") is not None:  # None: the trained layers had several τ
        return float(state["weight"])
    match = OFFICIAL_TAU.fullmatch(path.name)
    return float(match.group(1)) if match else None


def load_for_eval(cfg: DictConfig, path: str) -> EvalModel:
    """The backbone of `model=` with the checkpoint's weights (its variant read from the file), its topo layers
    (`topo.layers`), and what was read; the run's config is left as it is."""
    location = Path(path).expanduser()
    read: dict[str, Any] = {}
    model_cfg = copy.deepcopy(cfg)
    placements = Placements()
    model_args: dict[str, Any] = {}
    if location.is_dir():  # a Hugging Face directory brings its own config
        net = load_weights(instantiate(cfg.model.net, _convert_="all"), location)
        tau = None
    else:
        state, extra, fmt = read_checkpoint(location)
        read = read_architecture(cfg, location, state, extra)
        changed = {k: v for k, v in read.items() if cfg.model.net.get(k) != v}
        with open_dict(model_cfg):
            for key, value in read.items():
                model_cfg.model.net[key] = value
        if changed:
            log.info("model.net read from the checkpoint: %s", ", ".join(f"{k}={v}" for k, v in changed.items()))
        net = instantiate(model_cfg.model.net, _convert_="all")
        match_state(net, state, f"checkpoint {str(location)!r} (format {fmt})")
        log.info("loaded %d tensors into %s from %s (format %s)", len(state), type(net).__name__, location, fmt)
        tau = trained_topo_weight(location, extra)
        model_args = dict(extra["model_args"]) if isinstance(extra.get("model_args"), dict) else {}
        placements.load_state_dict(callback_state(extra).get("placements", {}))  # where training put the units
    layers = unique_layers(select_configured(cfg.topo, net))
    place(layers, placements.by_module)
    return EvalModel(net, layers, model_cfg.model, str(path), read, tau, model_args)


def data_misfit(cfg: DictConfig, model: DictConfig, kind: str, datamodule: L.LightningDataModule) -> str | None:
    """Why the task's data does not fit the model (class count, tokenizer vocabulary), or None when it does."""
    name = str(cfg.data.get("_target_", "data")).rsplit(".", 1)[-1]
    if kind == "vision":
        classes = getattr(datamodule.hparams, "num_classes", None)
        model_classes = model.net.get("num_classes")
        if classes is None:
            return f"{name} is not a classification dataset"
        return None if classes == model_classes else f"the model has {model_classes} classes, {name} has {classes}"
    tokenizer = getattr(datamodule, "tokenizer", None)
    if tokenizer is None:
        return f"{name} is not a text dataset"
    vocab = model.net.get("vocab_size")
    if padded_vocab(tokenizer.vocab_size) != padded_vocab(vocab):
        return f"the model's vocabulary has {vocab} tokens, the tokenizer of {name} {tokenizer.vocab_size}"
    return None


def task_data(cfg: DictConfig, model: EvalModel, kind: str) -> TaskData:
    """The task's data module (`data=`) if it fits the model (a trunk: its data, without eval.stimuli), else why not."""
    datamodule = instantiate(cfg.data, _convert_="all")
    misfit = data_misfit(cfg, model.config, kind, datamodule)
    trunk = no_classifier(model.config) if kind == "vision" else None
    if misfit and trunk and not cfg.eval.get("stimuli"):  # a trunk evaluated on its data: their images are its stimuli
        log.info("The model is a trunk (no classifier): the task's data are its stimuli, its accuracy is not scored")
        return TaskData(datamodule, no_classifier=trunk)
    if misfit:
        log.info("The task's data does not fit the model (%s): the analyses that need it are skipped", misfit)
        return TaskData(None, misfit)
    return TaskData(datamodule, no_classifier=trunk)


def eval_tokenizer(model: DictConfig, choice: str, data: TaskData) -> TextTokenizer:
    """eval.tokenizer: the data's (data, or auto when it fits), GPT-2's BPE, or bytes (auto: by vocabulary size)."""
    if choice == "data" or (choice == "auto" and data.datamodule is not None):
        if data.datamodule is None:
            raise ConfigError(f"eval.tokenizer=data, but the task's data does not fit the model ({data.misfit}); use "
                              f"eval.tokenizer=auto, {GPT2} or bytes, or the model's data=")
        return data.datamodule.tokenizer
    if choice == GPT2:
        return gpt2_tokenizer()
    if choice == "bytes":
        return ByteTokenizer()
    vocab = padded_vocab(model.net.vocab_size)
    if vocab == padded_vocab(GPT2_VOCAB):
        return gpt2_tokenizer()
    if vocab == padded_vocab(ByteTokenizer.vocab_size):
        return ByteTokenizer()
    raise ConfigError(f"eval.tokenizer=auto: no bundled tokenizer fits a vocabulary of {model.net.vocab_size} "
                      f"tokens (GPT-2: {GPT2_VOCAB}, bytes: 256); give the model's text data (data=hf_text "
                      "data.tokenizer_path=...) or eval.tokenizer=data")
