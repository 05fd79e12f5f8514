"""One evaluation: a model's topo layers analysed → report.json and PNG figures."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from toponets_exp.brain.topoformer import TGI_CUTOFFS, TGI_PAIRS
from toponets_exp.evaluation.aggregate import aggregate
from toponets_exp.evaluation.context import EvalContext, Section, jsonable, merge_layers
from toponets_exp.evaluation.language_analyses import language_analyses
from toponets_exp.evaluation.loading import EvalModel, TaskData, eval_tokenizer
from toponets_exp.evaluation.maps import weight_maps
from toponets_exp.evaluation.positioned import PositionSet
from toponets_exp.evaluation.positioned_analyses import positioned_vision
from toponets_exp.evaluation.positioned_language import positioned_language
from toponets_exp.evaluation.readout import headline_accuracy
from toponets_exp.evaluation.settings import EvalSettings
from toponets_exp.evaluation.vision_analyses import vision_analyses
from toponets_exp.io import write_json

log = logging.getLogger(__name__)
PATCHES = ("TDANN's find_patches with its 70 mm sheet scaled to the sheet's extent E = max(H, W) - 1 units: t >= 2 "
           "after Gaussian smoothing (sigma 0.034 E) on 100 x 100 anchors, areas 0.0204-0.918 E^2 (units^2), >= 10 "
           "units")


def _device(name: str) -> torch.device:
    """eval.device: auto (CUDA when available) or an explicit torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _conventions(settings: EvalSettings) -> dict[str, Any]:
    """How the report's statistics are defined where the field has several conventions."""
    return {"selectivity_std": settings.selectivity_std, "ed_features": settings.ed_features,
            "morans_i": "rook neighbours, binary weights",
            "morans_i_topolm": "queen neighbours, row-standardised weights (TopoLM)", "patches": PATCHES,
            "topoformer_tgi": {"cutoffs": [round(c, 12) for c in TGI_CUTOFFS], "pairs_drawn": TGI_PAIRS,
                               "seed": settings.seed}}


def _position_conventions(settings: EvalSettings) -> dict[str, Any]:
    """How the statistics are defined for units at their own positions (TDANN's analyses, spacetorch)."""
    p = settings.positions
    return {"selectivity_std": settings.selectivity_std, "ed_features": "unpooled (every recorded unit)",
            "max_units": p.max_units, "patches": "TDANN's find_patches on the units' positions, lengths as given (mm)",
            "tdann_selectivity": p.selectivity, "tdann_orientation": p.orientation, "windows": p.windows}


def _context(model: EvalModel, data: TaskData, settings: EvalSettings, figures: Path) -> EvalContext:
    """What the analyses share: the model on eval.device, its model.eval.* settings, and (language) the tokenizer."""
    model_eval = {"downsample": {}, "context": None, **OmegaConf.to_container(model.config.get("eval", {}),
                                                                              resolve=True)}
    tokenizer = eval_tokenizer(model.config, settings.tokenizer, data) if settings.kind == "language" else None
    device = _device(settings.device)
    model.net.to(device)
    return EvalContext(model.net, model.layers, data.datamodule, data.misfit, settings, model_eval, figures, device,
                       tokenizer, no_classifier=data.no_classifier)


def _analyses(ctx: EvalContext, positions: PositionSet | None) -> tuple[Section, dict[str, Any]]:
    """The per-layer section and model-level results: of the topo layers' sheets, or of the positions set's layers
    at their coordinates (no weight maps there: a block output's units share their channel's weights)."""
    if positions is not None:
        ctx.note(f"Units at their own positions ({positions.format}, {positions.directory}): the measures defined "
                 "only on a lattice are listed per layer under left_out, not computed")
        if ctx.settings.kind == "vision":
            return positioned_vision(ctx, positions)
        return positioned_language(ctx, positions)
    per_layer = weight_maps(ctx.layers, ctx.settings, ctx.figures)
    if ctx.settings.kind == "vision":
        measured, model_level = vision_analyses(ctx, per_layer)
    else:
        measured, model_level = language_analyses(ctx, per_layer)
    merge_layers(per_layer, measured)
    return per_layer, model_level


def model_label(settings: EvalSettings, checkpoint: str) -> str:
    """The model's name in comparisons: eval.label, else the checkpoint's file (or directory) name."""
    return settings.label or Path(checkpoint).name


def evaluate(model: EvalModel, data: TaskData, settings: EvalSettings, out: Path,
             positions: PositionSet | None = None) -> dict[str, Any]:
    """Analyse the model's topo layers (and eval.layers), or a positions set's layers at their coordinates, with
    `settings`; write report.json and figures/ under `out` and return the report. `data`: the task's data when it
    fits the model, else why not."""
    start = time.perf_counter()
    figures = out / "figures"
    ctx = _context(model, data, settings, figures)
    figures.mkdir(parents=True, exist_ok=True)
    per_layer, model_level = _analyses(ctx, positions)
    report = jsonable({
        "task": "eval", "kind": settings.kind, "label": model_label(settings, model.checkpoint),
        "checkpoint": model.checkpoint, "model": model.config.net._target_,
        "architecture_from_checkpoint": model.architecture, "topo_weight": model.topo_weight,
        "smoothness_method": settings.smoothness, "tdann": settings.tdann,
        "conventions": _conventions(settings) if positions is None else _position_conventions(settings),
        "positions": positions.describe() if positions is not None else None,
        "accuracy": headline_accuracy(model_level),
        "aggregate": aggregate(per_layer), "layers": per_layer, **model_level, "skipped": ctx.skipped,
        "notes": ctx.notes,
        "figures": sorted(str(p.relative_to(out)) for p in figures.glob("*.png")),
        "wall_time_s": round(time.perf_counter() - start, 1),
    })
    write_json(out / "report.json", report)
    agg = report["aggregate"]
    layers = len(positions.layers) if positions is not None else len(model.layers)
    log.info("Evaluation (%s): weight smoothness %.4f, effective dimensionality %.2f, TDANN smoothness of the "
             "selectivity maps %.3f (means over %d %s layers); report %s, %d figures in %s", settings.kind,
             agg["weight_smoothness"] or float("nan"), agg["effective_dimensionality"] or float("nan"),
             agg["tdann_smoothness"] or float("nan"), layers, "positioned" if positions is not None else "topo",
             out / "report.json", len(report["figures"]), figures)
    return report
