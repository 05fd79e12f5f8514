"""task=eval: brain-likeness analyses of a checkpoint → report.json, PNG figures and (with logger=wandb) W&B."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from toponets_exp.errors import ConfigError
from toponets_exp.io import write_json
from toponets_exp.models.checkpoints import load_weights
from toponets_exp.tasks.build import build_datamodule, build_loggers, output_dir, seed_and_check
from toponets_exp.tasks.eval_common import jsonable, mean_of, weight_maps
from toponets_exp.topo import select_layers

log = logging.getLogger(__name__)
KINDS = ("auto", "vision", "language")


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


def evaluate(cfg: DictConfig, ckpt_path: str | None = None, datamodule: L.LightningDataModule | None = None,
             loggers: Sequence[Logger] | None = None) -> dict[str, Any]:
    """Analyse the topo layers (and eval.layers) of `model` with weights from the checkpoint; write the report."""
    start = time.perf_counter()
    seed_and_check(cfg)
    ev = OmegaConf.to_container(cfg.eval, resolve=True)
    if ev["kind"] not in KINDS:
        raise ConfigError(f"eval.kind={ev['kind']!r} is not supported; use one of {', '.join(KINDS)}")
    if ev["kind"] == "auto":
        ev["kind"] = "language" if cfg.model.lit._target_.endswith("CausalLM") else "vision"
    path = ckpt_path or cfg.ckpt_path
    if not path:
        raise ConfigError("task=eval needs ckpt_path=<a .ckpt of ours, an official TopoNets file, or an HF folder>")
    if ev["kind"] == "vision" and ev["stimuli"]:
        from toponets_exp.tasks.eval_vision import check_stimuli

        check_stimuli(ev["stimuli"])  # a bad stimulus set fails before anything is written
    out = output_dir(cfg)
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    net = load_weights(instantiate(cfg.model.net, _convert_="all"), path)
    layers = select_layers(net, OmegaConf.to_container(cfg.topo.layers, resolve=True), cfg.topo.factor,
                           cfg.topo.weight)
    datamodule = datamodule or build_datamodule(cfg)
    device = _device(ev["device"])
    net.to(device)

    per_layer = weight_maps(layers, ev, figures)
    if ev["kind"] == "vision":
        from toponets_exp.tasks.eval_vision import vision_analyses as analyses
    else:
        from toponets_exp.tasks.eval_language import language_analyses as analyses
    model_level = analyses(net, layers, datamodule, ev, per_layer, figures, device)

    report = {
        "task": "eval", "kind": ev["kind"], "checkpoint": str(path), "model": cfg.model.net._target_,
        "topo_weight": cfg.topo.weight, "smoothness_method": ev["smoothness"],
        "aggregate": {
            "weight_smoothness": mean_of(per_layer, "weight_smoothness"),
            "response_smoothness": mean_of(per_layer, "response_smoothness"),
            "effective_dimensionality": mean_of(per_layer, "effective_dimensionality"),
        },
        "layers": per_layer,
        **model_level,
        "figures": sorted(str(p.relative_to(out)) for p in figures.glob("*.png")),
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    report = jsonable(report)
    write_json(out / "report.json", report)
    _to_wandb(loggers if loggers is not None else build_loggers(cfg), report, figures)
    agg = report["aggregate"]
    log.info("Evaluation (%s): weight smoothness %.4f, effective dimensionality %.2f (means over %d topo layers); "
             "report %s", ev["kind"], agg["weight_smoothness"] or float("nan"),
             agg["effective_dimensionality"] or float("nan"), len(layers), out / "report.json")
    return report


def run_eval(cfg: DictConfig) -> dict[str, Any]:
    """task=eval entry point."""
    return evaluate(cfg)
