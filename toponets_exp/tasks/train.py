"""task=train: fit, test the best checkpoint, write summary.json and print the final summary."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from toponets_exp.checks import integer
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation import EvalModel, TaskData, eval_settings, evaluate
from toponets_exp.io import write_json, write_text
from toponets_exp.lit import ReleaseProcessGroup
from toponets_exp.loggers import finish_wandb, log_report
from toponets_exp.resume import RunState, reset_metrics, resume_point
from toponets_exp.resume.run_dir import RESOLVED, SUMMARY, ResumePoint
from toponets_exp.resume.slurm import cluster_plugins
from toponets_exp.build import (build_datamodule, build_loggers, build_module, build_topo, check_model_data,
                                      output_dir, overrides, seed_and_check, select_topo_layers)
from toponets_exp.topo import TopoLayer, TopoSheetImages
from toponets_exp.topo.selection import unique_layers

log = logging.getLogger(__name__)
INTEGER_KEYS = ("max_epochs", "min_epochs", "max_steps", "min_steps", "num_nodes", "check_val_every_n_epoch",
                "log_every_n_steps", "accumulate_grad_batches", "num_sanity_val_steps")


def _trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Any], out: Path) -> L.Trainer:
    """The lightning.Trainer of `trainer=`, with the run's callbacks, loggers and directory."""
    for key in INTEGER_KEYS:
        integer(f"trainer.{key}", cfg.trainer.get(key), optional=True)
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, default_root_dir=str(out),
                           plugins=cluster_plugins(), _convert_="all")
    except InstantiationException as err:  # Lightning's checks of its arguments
        cause = err.__cause__
        if isinstance(cause, (TypeError, ValueError, MisconfigurationException)):
            raise ConfigError(f"trainer: {cause}") from err
        raise


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train `model` on `data` with TopoLoss; returns the summary written to summary.json."""
    start = time.perf_counter()
    seed_and_check(cfg)
    check_model_data(cfg)
    out = output_dir(cfg)
    resume = resume_point(cfg, out)  # before anything is built: a refused resume leaves the run as it was
    if resume is not None and resume.finished:
        return _finished(out, resume)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg)
    layers = select_topo_layers(cfg, module.net)
    topo = build_topo(cfg, layers)
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", filename="best-epoch{epoch:03d}",
                                 auto_insert_metric_name=False, monitor=module.monitor, mode=module.monitor_mode,
                                 save_top_k=cfg.checkpoint.save_top_k, save_last=False)
    every = integer("checkpoint.every_n_train_steps", cfg.checkpoint.every_n_train_steps, 0)
    last = RunState(out / "checkpoints", every, out / "metrics.csv")
    loggers = build_loggers(cfg)
    callbacks = [topo, checkpoint, last,
                 LearningRateMonitor("step"), ReleaseProcessGroup(),
                 *([TopoSheetImages(unique_layers(layers), cfg.logger.sheet_images_every_n_val)]
                   if any(isinstance(lg, WandbLogger) for lg in loggers) else [])]
    trainer = _trainer(cfg, callbacks, loggers, out)  # knows this process's global rank (no process group yet)
    if trainer.is_global_zero:  # the one writer of the run directory
        reset_metrics(out, resume)
        if resume is None:
            write_text(out / RESOLVED, OmegaConf.to_yaml(cfg, resolve=True))

    trainer.fit(module, datamodule=datamodule, ckpt_path=resume.path if resume else cfg.ckpt_path)
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
        "last_checkpoint": str(last.path),
        "resumed_from_step": resume.step if resume else None,
        "topo": topo.summary(),
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    if trainer.is_global_zero:
        if cfg.eval.after_train:  # the module holds the weights trainer.test used: the best checkpoint's, or the last
            if not best:
                log.info("No validation ran (trainer.val_check_interval / check_val_every_n_epoch), so there is no "
                         "best checkpoint: the evaluation uses the last weights (%s)", last.path)
            report = _evaluate(cfg, module, unique_layers(layers), topo.weight, datamodule, best or str(last.path), out)
            log_report(trainer.loggers, report, out)
            summary["eval"] = {"report": str(out / "report.json"), **report["aggregate"]}
            summary["wall_time_s"] = round(time.perf_counter() - start, 1)
        summary.update(_wandb_runs(trainer.loggers))
        write_json(out / SUMMARY, summary)
        _print_summary(summary)
    finish_wandb(trainer.loggers, _headline(summary))
    return summary


def _evaluate(cfg: DictConfig, module: L.LightningModule, layers: list[TopoLayer], tau: float,
              datamodule: L.LightningDataModule, checkpoint: str, out: Path) -> dict[str, Any]:
    """The evaluation of the trained backbone on its own data (toponets_exp.evaluation), from the run's seed."""
    seed_and_check(cfg)
    settings = eval_settings(cfg)
    model = EvalModel(module.net, layers, cfg.model, checkpoint, {}, tau)
    return evaluate(model, TaskData(datamodule), settings, out)


def _finished(out: Path, resume: ResumePoint) -> dict[str, Any]:
    """A finished run resumed with no further stop criteria: say so, change nothing, return its summary."""
    summary = json.loads((out / SUMMARY).read_text())
    best = summary.get("best_checkpoint") or str(resume.path)
    log.info("The run in %s has finished (%d optimizer steps; %s): nothing to train, and its results stay as they "
             "are. Train further with a larger trainer.max_epochs or trainer.max_steps; evaluate again with: python "
             "run.py task=eval ckpt_path=%s", out, resume.step, SUMMARY, best)
    return summary


def _headline(summary: dict[str, Any]) -> dict[str, float]:
    """The run's headline numbers for the W&B run summary."""
    values = {f"test/{k}": v for k, v in summary["test"].items()}
    values["topo/final_mean_unweighted"] = summary["topo"]["mean_unweighted"]
    values.update({f"eval/{k}": v for k, v in summary.get("eval", {}).items() if isinstance(v, (int, float))})
    return values


def _wandb_runs(loggers: list[Any]) -> dict[str, Any]:
    """Where each W&B run lives: its local directory, and the URL when online."""
    runs = [{"dir": str(Path(lg.experiment.dir).parent), "url": None if lg.experiment.offline else lg.experiment.url}
            for lg in loggers if isinstance(lg, WandbLogger)]
    return {"wandb": runs} if runs else {}


def _print_summary(summary: dict[str, Any]) -> None:
    """The final summary, through logging (console and the run's log file)."""
    topo = summary["topo"]
    lines = [f"test {k}: {v:.4f}" for k, v in summary["test"].items()]
    lines.append(f"TopoLoss (topo.loss={topo['loss']}, τ={topo['weight']:g}, {topo['reduction']}): total "
                 f"{topo['total']:.4f}, "
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
    evaluated = ", report.json, figures/" if "eval" in summary else ""
    lines.append(f"outputs: {summary['output_dir']} (summary.json, metrics.csv, checkpoints/{evaluated})")
    log.info("Summary\n%s", "\n".join(lines))
