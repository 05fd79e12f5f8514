"""task=train: fit, test the best checkpoint, write summary.json and print the final summary."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from toponets_exp.errors import ConfigError
from toponets_exp.tasks.build import (build_datamodule, build_loggers, build_module, build_topo, output_dir,
                                      overrides, seed_and_check)
from toponets_exp.topo import TopoLossCallback

log = logging.getLogger(__name__)


def _trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Any], out: Path) -> L.Trainer:
    """lightning.Trainer from the `trainer.*` keys."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    try:
        return L.Trainer(**kwargs, callbacks=callbacks, logger=loggers, default_root_dir=str(out))
    except TypeError as err:
        raise ConfigError(f"trainer: {err}") from err


def _topo_summary(topo: TopoLossCallback) -> dict[str, Any]:
    """Final unweighted per-layer TopoLoss and the τ-weighted total."""
    with torch.no_grad():
        per_layer = topo.loss.layer_losses(dtype=torch.float32)
        total = topo.loss.total(per_layer)
    return {"weight": topo.weight, "reduction": topo.reduction, "total": float(total),
            "mean_unweighted": float(torch.stack(list(per_layer.values())).mean()),
            "per_layer": {name: float(v) for name, v in per_layer.items()}}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train `model` on `data` with TopoLoss; returns the summary written to summary.json."""
    start = time.perf_counter()
    seed_and_check(cfg)
    out = output_dir(cfg)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg)
    topo = build_topo(cfg, module)
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", filename="best-{epoch:03d}",
                                 monitor=module.monitor, mode=module.monitor_mode,
                                 **OmegaConf.to_container(cfg.checkpoint, resolve=True))
    trainer = _trainer(cfg, [topo, checkpoint], build_loggers(cfg), out)
    (out / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    best = checkpoint.best_model_path or None
    test = trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)[0]

    summary = {
        "task": "train",
        "output_dir": str(out),
        "overrides": overrides(),
        "seed": cfg.seed,
        "epochs": trainer.current_epoch,
        "optimizer_steps": trainer.global_step,
        "test": {k.split("/", 1)[1]: float(v) for k, v in test.items() if k.startswith("test/")},
        "best_checkpoint": best,
        "best_score": float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
        "last_checkpoint": checkpoint.last_model_path or None,
        "topo": _topo_summary(topo),
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    if trainer.is_global_zero:
        if cfg.eval.after_train and best:
            from toponets_exp.tasks.evaluate import evaluate

            report = evaluate(cfg, best, datamodule, trainer.loggers)
            summary["eval"] = {"report": str(out / "report.json"), **report["aggregate"]}
            summary["wall_time_s"] = round(time.perf_counter() - start, 1)
        summary.update(_wandb_runs(trainer.loggers))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        _print_summary(summary)
    return summary


def _wandb_runs(loggers: list[Any]) -> dict[str, Any]:
    """Where each W&B run lives: its local directory, and the URL when online."""
    runs = [{"dir": str(Path(lg.experiment.dir).parent), "url": lg.experiment.url}
            for lg in loggers if isinstance(lg, WandbLogger)]
    return {"wandb": runs} if runs else {}


def _print_summary(summary: dict[str, Any]) -> None:
    """The final summary, through logging (console and the run's log file)."""
    topo = summary["topo"]
    lines = [f"test {k}: {v:.4f}" for k, v in summary["test"].items()]
    lines.append(f"TopoLoss (τ={topo['weight']:g}, {topo['reduction']}): total {topo['total']:.4f}, "
                 f"unweighted mean {topo['mean_unweighted']:.4f}")
    lines += [f"  {name}: {v:.4f}" for name, v in topo["per_layer"].items()]
    if "eval" in summary:
        ev = summary["eval"]
        lines.append(f"weight smoothness {ev['weight_smoothness']:.4f}, effective dimensionality "
                     f"{ev['effective_dimensionality']:.2f} (means over topo layers; {ev['report']})")
    for run in summary.get("wandb", []):
        lines.append(f"W&B run {run['url']}" if run["url"] else f"W&B offline run {run['dir']} "
                     f"(upload with: wandb sync {run['dir']})")
    lines.append(f"wall time {summary['wall_time_s']:.1f} s")
    lines.append(f"outputs: {summary['output_dir']} (summary.json, metrics.csv, checkpoints/)")
    log.info("Summary\n%s", "\n".join(lines))
