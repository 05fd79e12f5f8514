"""An evaluation's settings, checked from the config alone before anything is built or written: eval.*, the files it
names, the kind of evaluation and what that kind needs of the model's config; a bad key is named with what it
accepts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from toponets_exp.brain.blimp import load_blimp
from toponets_exp.brain.gratings import PREFERENCES
from toponets_exp.brain.smoothness import METHODS
from toponets_exp.checks import boolean, choice, integer, is_int, is_number, items, must
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation.position_settings import PositionSettings, check_positions, position_settings
from toponets_exp.evaluation.recording import REDUCTIONS
from toponets_exp.evaluation.stimulus_folder import check_stimuli

KINDS = ("vision", "language")
CHOICES: dict[str, Sequence[str]] = {
    "kind": ("auto", *KINDS),
    "smoothness": METHODS,
    "selectivity_std": ("sample", "population"),
    "ed_features": ("pooled", "unpooled"),
    "token_reduce": tuple(r for r in REDUCTIONS if r != "flatten"),
    "tokenizer": ("auto", "data", "gpt2", "bytes"),
    "orientation_preference": PREFERENCES,
}
POSITIVE_INTS = ("batch_size", "max_pairs", "n_sentences", "tdann.num_bins", "tdann.num_samples",
                 "positions.max_units", "positions.selectivity.num_samples", "positions.orientation.num_samples",
                 "positions.orientation.max_units", "positions.windows.num_bins")
OPTIONAL_POSITIVE_INTS = ("metric_batches", "max_categories", "max_per_category", "tdann.sample_size",
                          "positions.windows.window_number_limit")
SAMPLE_SIZES = ("positions.selectivity.sample_size", "positions.orientation.sample_size",
                "positions.windows.unit_number_limit")  # unit samples: at least a pair
POSITIVE_DISTANCES = ("tdann.distance_cutoff", "positions.selectivity.distance_cutoff",
                      "positions.orientation.distance_cutoff")
BOOLEANS = ("after_train", "architecture_from_checkpoint", "efficiency", "gratings", "readout", "positions.rescale")
NEURAL_DATA_KEYS = ("responses", "stimuli")


@dataclass(frozen=True)
class TdannSettings:
    """eval.tdann: how TDANN's smoothness of a map is measured (brain/tdann.py)."""

    num_bins: int
    num_samples: int
    sample_size: int | None
    distance_cutoff: float | None


@dataclass(frozen=True)
class EvalSettings:
    """One evaluation's checked settings: eval.* (lists as tuples), the run's seed and the kind of evaluation."""

    kind: str                 # vision | language: eval.kind, or with auto the model's own (model.eval.kind)
    seed: int                 # subsampled pairs, TDANN's samples, TGI's pairs, cross-validation folds, non-words
    tdann: TdannSettings
    positions: PositionSettings
    after_train: bool
    device: str
    layers: tuple[str, ...]
    batch_size: int
    architecture_from_checkpoint: bool
    smoothness: str
    max_pairs: int
    selectivity_std: str
    ed_features: str
    efficiency: bool
    metric_batches: int | None
    pruning: tuple[float, ...]
    downsampling: tuple[int, ...]
    label: str | None
    stimuli: str | None
    image_size: int
    max_categories: int | None
    max_per_category: int | None
    selectivity_threshold: float
    gratings: bool
    orientation_preference: str
    readout: bool
    readout_test_fraction: float
    neural_data: str | None
    predictivity_layers: tuple[str, ...]
    cv_folds: int
    sentences: str | None
    n_sentences: int
    tokenizer: str
    token_reduce: str
    fdr_alpha: float
    integration_layer: str | None
    integration_distances: tuple[int, ...]
    blimp: str | None


def _get(ev: dict[str, Any], key: str) -> Any:
    """A possibly dotted key of the eval settings."""
    node: Any = ev
    for part in key.split("."):
        node = node[part]
    return node


def _check_numbers(ev: dict[str, Any]) -> None:
    """Counts, rates and lists of eval.*."""
    for key in POSITIVE_INTS + OPTIONAL_POSITIVE_INTS:
        integer(f"eval.{key}", _get(ev, key), 1, optional=key in OPTIONAL_POSITIVE_INTS, accepted="a positive integer")
    for key in SAMPLE_SIZES:
        integer(f"eval.{key}", _get(ev, key), 2, optional=key.endswith("unit_number_limit"),
                accepted="an integer >= 2 (units)")
    for key in POSITIVE_DISTANCES:
        cutoff = _get(ev, key)
        must(f"eval.{key}", cutoff, cutoff is None or (is_number(cutoff) and cutoff > 0),
             "a positive distance in sheet units or mm (or null)")
    check_positions(ev["positions"])
    share = ev["readout_test_fraction"]
    must("eval.readout_test_fraction", share, is_number(share) and 0 < share < 1, "a fraction in (0, 1)")
    integer("eval.cv_folds", ev["cv_folds"], 2)
    integer("eval.image_size", ev["image_size"], 8, accepted="an integer >= 8 (pixels)")
    must("eval.selectivity_threshold", ev["selectivity_threshold"], is_number(ev["selectivity_threshold"]),
         "a number (a t value)")
    alpha = ev["fdr_alpha"]
    must("eval.fdr_alpha", alpha, is_number(alpha) and 0 < alpha < 1, "a false discovery rate in (0, 1)")
    items("eval.pruning", ev["pruning"], lambda a: is_number(a) and 0 <= a <= 1, "a list of sparsities in [0, 1]")
    items("eval.downsampling", ev["downsampling"], lambda k: is_int(k) and k >= 1,
          "a list of positive integers (k x k)")
    items("eval.integration_distances", ev["integration_distances"], lambda d: is_int(d) and d >= 0,
          "a non-empty list of integers >= 0", nonempty=True)


def _check_values(ev: dict[str, Any]) -> None:
    """Every eval.* value: choices, numbers, the device, switches and module-name lists."""
    for key, options in CHOICES.items():
        choice(f"eval.{key}", ev[key], options)
    _check_numbers(ev)
    if ev["device"] != "auto":
        try:
            torch.device(ev["device"])
        except (RuntimeError, TypeError) as err:
            raise ConfigError(f"eval.device={ev['device']!r} is not a torch device ({err}); use auto, cpu, cuda, "
                              "cuda:0 ...") from None
    for key in BOOLEANS:
        boolean(f"eval.{key}", _get(ev, key))
    for key in ("layers", "predictivity_layers"):
        items(f"eval.{key}", ev[key], lambda name: isinstance(name, str), "a list of module names")


def _kind(cfg: DictConfig, asked: str) -> str:
    """eval.kind, or with auto the model's own (model.eval.kind, vision by default)."""
    if asked != "auto":
        return asked
    return choice("model.eval.kind", OmegaConf.select(cfg, "model.eval.kind", default="vision"), KINDS)


def _check_neural_data(path: str) -> None:
    """eval.neural_data: a .npz file with the responses and the stimuli they answer."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"eval.neural_data={str(file)!r} is not a file (.npz with 'responses' and 'stimuli')")
    with np.load(file, allow_pickle=False) as data:
        missing = set(NEURAL_DATA_KEYS) - set(data.files)
    if missing:
        raise ConfigError(f"eval.neural_data {file.name} lacks {sorted(missing)}; it needs 'responses' "
                          "(stimuli × targets) and 'stimuli' (paths relative to eval.stimuli)")


def _check_language(cfg: DictConfig, ev: dict[str, Any]) -> None:
    """What a language evaluation reads: the model's context length, eval.sentences and eval.blimp."""
    if not OmegaConf.select(cfg, "model.eval.context"):
        raise ConfigError("model.eval.context is not set: a language model's yaml names its context length (e.g. "
                          "context: ${model.net.block_size})")
    if ev["sentences"] and not Path(ev["sentences"]).expanduser().is_file():
        raise ConfigError(f"eval.sentences={str(Path(ev['sentences']).expanduser())!r} is not a file with one "
                          "sentence per line")
    if ev["blimp"]:
        try:
            load_blimp(ev["blimp"])
        except (ValueError, OSError) as err:
            raise ConfigError(f"eval.blimp={ev['blimp']!r}: {err}") from None


def _frozen(value: Any) -> Any:
    """A resolved config value with its lists as tuples."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def eval_settings(cfg: DictConfig) -> EvalSettings:
    """The evaluation's settings, every value checked (ConfigError naming the key otherwise) before a model is built:
    eval.*, the run's `seed`, the kind of evaluation, and what that kind reads (a vision evaluation's stimulus folder
    is read whole, and its neural data opened; a language evaluation needs model.eval.context, its sentence file and
    its BLiMP pairs)."""
    ev = OmegaConf.to_container(cfg.eval, resolve=True)
    _check_values(ev)
    kind = _kind(cfg, ev["kind"])
    if kind == "vision":
        if ev["stimuli"]:
            check_stimuli(ev["stimuli"])
        if ev["neural_data"]:
            _check_neural_data(ev["neural_data"])
    else:
        _check_language(cfg, ev)
    label = ev["label"]
    must("eval.label", label, label is None or (isinstance(label, str) and label.strip() != ""),
         "a model name (or null: the checkpoint file's name)")
    own = ("kind", "seed", "tdann", "positions")
    given = {f.name: _frozen(ev[f.name]) for f in fields(EvalSettings) if f.name not in own}
    return EvalSettings(kind=kind, seed=integer("seed", cfg.seed), tdann=TdannSettings(**ev["tdann"]),
                        positions=position_settings(ev["positions"]), **given)
