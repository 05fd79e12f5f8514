"""task=eval: brain-likeness analyses of a checkpoint → report.json, PNG figures and (with logger=wandb) W&B."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from toponets_exp.brain.topoformer import TGI_CUTOFFS, TGI_PAIRS
from toponets_exp.errors import ConfigError
from toponets_exp.io import write_json
from toponets_exp.tasks.build import build_loggers, output_dir, seed_and_check, select_topo_layers
from toponets_exp.tasks.eval_common import EvalContext, finite_mean, jsonable, mean_of, weight_maps
from toponets_exp.tasks.eval_config import eval_settings
from toponets_exp.tasks.eval_gratings import orientation_aggregate
from toponets_exp.tasks.eval_model import checkpoint_net, eval_tokenizer, task_data
from toponets_exp.topo import TopoLayer
from toponets_exp.topo.selection import unique_layers

log = logging.getLogger(__name__)


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


def evaluate(cfg: DictConfig, net: nn.Module | None = None, layers: Sequence[TopoLayer] | None = None,
             datamodule: L.LightningDataModule | None = None, loggers: Sequence[Logger] | None = None,
             checkpoint: str | None = None) -> dict[str, Any]:
    """Analyse the topo layers (and eval.layers) of a model; write report.json and the figures.

    task=eval reads the model from `ckpt_path`; at the end of training the trained backbone, its selected topo layers
    and the data module are passed in (`checkpoint` names where the weights came from).
    """
    start = time.perf_counter()
    seed_and_check(cfg)
    ev = eval_settings(cfg)
    kind = ev["kind"] if ev["kind"] != "auto" else cfg.model.get("eval", {}).get("kind", "vision")
    if kind == "vision" and ev["stimuli"]:
        from toponets_exp.tasks.eval_vision import check_stimuli

        check_stimuli(ev["stimuli"])  # a bad stimulus set fails before anything is built or written
    architecture: dict[str, Any] = {}
    if net is None:
        checkpoint = cfg.ckpt_path
        if not checkpoint:
            raise ConfigError("task=eval needs ckpt_path=<a .ckpt of ours, an official TopoNets file, or an HF "
                              "folder>")
        net, architecture = checkpoint_net(cfg, checkpoint)
        layers = unique_layers(select_topo_layers(cfg, net))
    data, misfit = task_data(cfg, kind, datamodule)
    model_eval = {"downsample": {}, "context": None,
                  **OmegaConf.to_container(cfg.model.get("eval", {}), resolve=True)}
    if kind == "language" and not model_eval["context"]:
        raise ConfigError("model.eval.context is not set: a language model's yaml names its context length (e.g. "
                          "context: ${model.net.block_size})")
    tokenizer = eval_tokenizer(cfg, ev["tokenizer"], data, misfit) if kind == "language" else None
    out = output_dir(cfg)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    device = _device(ev["device"])
    net.to(device)
    ctx = EvalContext(net, layers, data, misfit, ev, model_eval, figures, device, tokenizer)

    per_layer = weight_maps(layers, ev, figures)
    if kind == "vision":
        from toponets_exp.tasks.eval_vision import vision_analyses as analyses
    else:
        from toponets_exp.tasks.eval_language import language_analyses as analyses
    model_level = analyses(ctx, per_layer)

    report = {
        "task": "eval", "kind": kind, "checkpoint": str(checkpoint), "model": cfg.model.net._target_,
        "architecture_from_checkpoint": architecture, "topo_weight": cfg.topo.weight,
        "smoothness_method": ev["smoothness"], "tdann": ev["tdann"],
        "conventions": {"selectivity_std": ev["selectivity_std"], "ed_features": ev["ed_features"],
                        "morans_i": "rook neighbours, binary weights",
                        "morans_i_topolm": "queen neighbours, row-standardised weights (TopoLM)",
                        "patches": "TDANN's find_patches with its 70 mm sheet scaled to the sheet's extent E = max(H, W)"
                                   " - 1 units: t >= 2 after Gaussian smoothing (sigma 0.034 E) on 100 x 100 anchors, "
                                   "areas 0.0204-0.918 E^2 (units^2), >= 10 units",
                        "topoformer_tgi": {"cutoffs": [round(c, 12) for c in TGI_CUTOFFS], "pairs_drawn": TGI_PAIRS,
                                           "seed": ev["seed"]}},
        "aggregate": {
            "weight_smoothness": mean_of(per_layer, "weight_smoothness"),
            "response_smoothness": mean_of(per_layer, "response_smoothness"),
            "effective_dimensionality": mean_of(per_layer, "effective_dimensionality"),
            **tdann_aggregate(per_layer),
            **map_aggregate(per_layer, "morans_i_topolm"),
            **map_aggregate(per_layer, "patches"),
            **layer_aggregate(per_layer, "topoformer_tgi"),
            **orientation_aggregate(per_layer),
        },
        "layers": per_layer,
        **model_level,
        "skipped": ctx.skipped,
        "figures": sorted(str(p.relative_to(out)) for p in figures.glob("*.png")),
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    report = jsonable(report)
    write_json(out / "report.json", report)
    _to_wandb(loggers if loggers is not None else build_loggers(cfg), report, figures)
    agg = report["aggregate"]
    log.info("Evaluation (%s): weight smoothness %.4f, effective dimensionality %.2f, TDANN smoothness of the "
             "selectivity maps %.3f (means over %d topo layers); report %s, %d figures in %s", kind,
             agg["weight_smoothness"] or float("nan"), agg["effective_dimensionality"] or float("nan"),
             agg["tdann_smoothness"] or float("nan"), len(layers), out / "report.json", len(report["figures"]),
             figures)
    return report


def selectivity_entries(per_layer: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every selectivity map's entry: the vision categories' and the language contrast's, layer by layer."""
    maps = []
    for entry in per_layer.values():
        maps += list(entry.get("selectivity", {}).values())
        if "language_selectivity" in entry:
            maps.append(entry["language_selectivity"])
    return maps


def _counted_mean(key: str, values: list[Any], what: str) -> dict[str, Any]:
    """The mean of the finite values, and how many of them it used and left out."""
    used = [v for v in values if v is not None and np.isfinite(v)]
    return {key: finite_mean(used), f"{key}_{what}_used": len(used), f"{key}_{what}_left_out": len(values) - len(used)}


def tdann_aggregate(per_layer: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean TDANN smoothness of the selectivity maps (vision categories, language contrast) that the statistic
    resolves, and how many maps it used and left out: a map whose curve keeps one bin before an empty one (a small
    lattice sheet) scores 1 by construction, and one with infinite t has no value."""
    maps = selectivity_entries(per_layer)
    used = [m["tdann_smoothness"] for m in maps if m.get("tdann_bins", 0) >= 2 and m.get("tdann_smoothness") is not None
            and np.isfinite(m["tdann_smoothness"])]
    return {"tdann_smoothness": finite_mean(used), "tdann_maps_used": len(used),
            "tdann_maps_left_out": len(maps) - len(used)}


def map_aggregate(per_layer: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean of a selectivity-map statistic over the maps where it is defined, with the counts used and left out."""
    return _counted_mean(key, [m.get(key) for m in selectivity_entries(per_layer)], "maps")


def layer_aggregate(per_layer: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """Mean of a topo-layer statistic over the layers where it is defined (Topoformer's TGI is undefined on a sheet
    of fewer than 100 units), with the counts used and left out."""
    return _counted_mean(key, [entry.get(key) for entry in per_layer.values() if key in entry], "layers")


def run_eval(cfg: DictConfig) -> dict[str, Any]:
    """task=eval entry point."""
    return evaluate(cfg)
