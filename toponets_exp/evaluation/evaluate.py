"""One evaluation: a model's topo layers analysed → report.json, PNG figures and (with W&B loggers) W&B."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from toponets_exp.brain.topoformer import TGI_CUTOFFS, TGI_PAIRS
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation.aggregate import aggregate
from toponets_exp.evaluation.context import EvalContext, jsonable, merge_layers
from toponets_exp.evaluation.loading import eval_tokenizer
from toponets_exp.evaluation.maps import weight_maps
from toponets_exp.io import write_json
from toponets_exp.topo import TopoLayer

log = logging.getLogger(__name__)
PATCHES = ("TDANN's find_patches with its 70 mm sheet scaled to the sheet's extent E = max(H, W) - 1 units: t >= 2 "
           "after Gaussian smoothing (sigma 0.034 E) on 100 x 100 anchors, areas 0.0204-0.918 E^2 (units^2), >= 10 "
           "units")


@dataclass
class Subject:
    """What is evaluated: the backbone, its topo layers, its model.* config, and where its weights came from."""

    net: nn.Module
    layers: Sequence[TopoLayer]
    model: DictConfig
    checkpoint: str
    architecture: dict[str, Any]  # model.net keys read from the checkpoint
    topo_weight: float | None     # the τ it was trained with, when known


def _device(name: str) -> torch.device:
    """eval.device: auto (CUDA when available) or an explicit torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_wandb(loggers: Sequence[Logger], report: dict[str, Any], figures: Path) -> None:
    """Report scalars and every figure to the W&B loggers among `loggers`."""
    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not wandb_loggers:
        return
    scalars = {f"eval/{k}": v for k, v in report["aggregate"].items() if isinstance(v, (int, float))}
    for name, entry in report["layers"].items():
        scalars.update({f"eval/{name}/{k}": v for k, v in entry.items() if isinstance(v, (int, float))})
    for lg in wandb_loggers:
        lg.log_metrics(scalars)
        for png in sorted(figures.glob("*.png")):
            lg.log_image(key=f"eval/{png.stem}", images=[str(png)])


def _conventions(ev: dict[str, Any]) -> dict[str, Any]:
    """How the report's statistics are defined where the field has several conventions."""
    return {"selectivity_std": ev["selectivity_std"], "ed_features": ev["ed_features"],
            "morans_i": "rook neighbours, binary weights",
            "morans_i_topolm": "queen neighbours, row-standardised weights (TopoLM)", "patches": PATCHES,
            "topoformer_tgi": {"cutoffs": [round(c, 12) for c in TGI_CUTOFFS], "pairs_drawn": TGI_PAIRS,
                               "seed": ev["seed"]}}


def evaluate(subject: Subject, data: L.LightningDataModule | None, misfit: str | None, ev: dict[str, Any],
             kind: str, out: Path, loggers: Sequence[Logger]) -> dict[str, Any]:
    """Analyse the subject's topo layers (and eval.layers) with the `ev` settings; write report.json and figures/
    under `out`. `data` is the task's data when it fits the model, else None and `misfit` says why."""
    start = time.perf_counter()
    model_eval = {"downsample": {}, "context": None, **OmegaConf.to_container(subject.model.get("eval", {}),
                                                                              resolve=True)}
    if kind == "language" and not model_eval["context"]:
        raise ConfigError("model.eval.context is not set: a language model's yaml names its context length (e.g. "
                          "context: ${model.net.block_size})")
    tokenizer = eval_tokenizer(subject.model, ev["tokenizer"], data, misfit) if kind == "language" else None
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    device = _device(ev["device"])
    subject.net.to(device)
    ctx = EvalContext(subject.net, subject.layers, data, misfit, ev, model_eval, figures, device, tokenizer)
    per_layer = weight_maps(subject.layers, ev, figures)
    if kind == "vision":
        from toponets_exp.evaluation.vision_analyses import vision_analyses as analyses
    else:
        from toponets_exp.evaluation.language_analyses import language_analyses as analyses
    measured, model_level = analyses(ctx, per_layer)
    merge_layers(per_layer, measured)
    report = jsonable({
        "task": "eval", "kind": kind, "checkpoint": subject.checkpoint, "model": subject.model.net._target_,
        "architecture_from_checkpoint": subject.architecture, "topo_weight": subject.topo_weight,
        "smoothness_method": ev["smoothness"], "tdann": ev["tdann"], "conventions": _conventions(ev),
        "aggregate": aggregate(per_layer), "layers": per_layer, **model_level, "skipped": ctx.skipped,
        "figures": sorted(str(p.relative_to(out)) for p in figures.glob("*.png")),
        "wall_time_s": round(time.perf_counter() - start, 1),
    })
    write_json(out / "report.json", report)
    _to_wandb(loggers, report, figures)
    agg = report["aggregate"]
    log.info("Evaluation (%s): weight smoothness %.4f, effective dimensionality %.2f, TDANN smoothness of the "
             "selectivity maps %.3f (means over %d topo layers); report %s, %d figures in %s", kind,
             agg["weight_smoothness"] or float("nan"), agg["effective_dimensionality"] or float("nan"),
             agg["tdann_smoothness"] or float("nan"), len(subject.layers), out / "report.json",
             len(report["figures"]), figures)
    return report
