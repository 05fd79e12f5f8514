"""eval.* checked before an evaluation builds or writes anything: a bad key is named with what it accepts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from toponets_exp.brain.gratings import PREFERENCES
from toponets_exp.brain.smoothness import METHODS
from toponets_exp.checks import boolean, choice, integer, is_int, is_number
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation.recording import REDUCTIONS

CHOICES: dict[str, Sequence[str]] = {
    "kind": ("auto", "vision", "language"),
    "smoothness": METHODS,
    "selectivity_std": ("sample", "population"),
    "ed_features": ("pooled", "unpooled"),
    "token_reduce": tuple(r for r in REDUCTIONS if r != "flatten"),
    "tokenizer": ("auto", "data", "gpt2", "bytes"),
    "orientation_preference": PREFERENCES,
}
POSITIVE_INTS = ("batch_size", "max_pairs", "n_sentences", "tdann.num_bins", "tdann.num_samples")
OPTIONAL_POSITIVE_INTS = ("metric_batches", "max_categories", "max_per_category", "tdann.sample_size")


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
    cutoff = ev["tdann"]["distance_cutoff"]
    if cutoff is not None and not (is_number(cutoff) and cutoff > 0):
        raise ConfigError(f"eval.tdann.distance_cutoff={cutoff!r} must be a positive distance in sheet units (or null)")
    integer("eval.cv_folds", ev["cv_folds"], 2)
    integer("eval.image_size", ev["image_size"], 8, accepted="an integer >= 8 (pixels)")
    if not is_number(ev["selectivity_threshold"]):
        raise ConfigError(f"eval.selectivity_threshold={ev['selectivity_threshold']!r} must be a number (a t value)")
    if not (is_number(ev["fdr_alpha"]) and 0 < ev["fdr_alpha"] < 1):
        raise ConfigError(f"eval.fdr_alpha={ev['fdr_alpha']!r} must be a false discovery rate in (0, 1)")
    if not isinstance(ev["pruning"], list) or not all(is_number(a) and 0 <= a <= 1 for a in ev["pruning"]):
        raise ConfigError(f"eval.pruning={ev['pruning']!r} must be a list of sparsities in [0, 1]")
    if not isinstance(ev["downsampling"], list) or not all(is_int(k) and k >= 1 for k in ev["downsampling"]):
        raise ConfigError(f"eval.downsampling={ev['downsampling']!r} must be a list of positive integers (k x k)")
    distances = ev["integration_distances"]
    if not isinstance(distances, list) or not distances or not all(is_int(d) and d >= 0 for d in distances):
        raise ConfigError(f"eval.integration_distances={distances!r} must be a non-empty list of integers >= 0")


def eval_settings(cfg: DictConfig) -> dict[str, Any]:
    """The resolved eval.* settings, every value checked (ConfigError naming the key otherwise), and the run's
    `seed` (subsampled pairs, TDANN's samples, TGI's pairs, cross-validation folds, non-words)."""
    ev = {**OmegaConf.to_container(cfg.eval, resolve=True), "seed": cfg.seed}
    for key, options in CHOICES.items():
        choice(f"eval.{key}", ev[key], options)
    _check_numbers(ev)
    if ev["device"] != "auto":
        try:
            torch.device(ev["device"])
        except (RuntimeError, TypeError) as err:
            raise ConfigError(f"eval.device={ev['device']!r} is not a torch device ({err}); use auto, cpu, cuda, "
                              "cuda:0 ...") from None
    for key in ("efficiency", "gratings"):
        boolean(f"eval.{key}", ev[key])
    for key in ("layers", "predictivity_layers"):
        if not isinstance(ev[key], list) or not all(isinstance(n, str) for n in ev[key]):
            raise ConfigError(f"eval.{key}={ev[key]!r} must be a list of module names")
    return ev


def eval_plan(cfg: DictConfig) -> tuple[dict[str, Any], str]:
    """The checked eval settings and the kind of evaluation: eval.kind, or with auto the model's own
    (model.eval.kind, vision by default). A vision evaluation's stimulus folder is read whole now, so a bad one
    fails before anything is built or written."""
    ev = eval_settings(cfg)
    kind = ev["kind"] if ev["kind"] != "auto" else str(cfg.model.get("eval", {}).get("kind", "vision"))
    if kind == "vision" and ev["stimuli"]:
        from toponets_exp.evaluation.stimuli import check_stimuli

        check_stimuli(ev["stimuli"])
    return ev, kind
