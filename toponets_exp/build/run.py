"""A training run built from its config: first every setting checked and the run directory read (nothing built or
written), then the objects made and the directory prepared, all before the first step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from toponets_exp.build.data import build_datamodule, check_model_data
from toponets_exp.build.loggers import build_loggers, check_loggers
from toponets_exp.build.module import build_module, example_input
from toponets_exp.build.tdann import build_tdann, run_positions, tdann_settings, write_positions
from toponets_exp.build.topo import TDANN, build_topo, placement_safe_point, select_topo_layers
from toponets_exp.build.trainer import build_trainer, check_trainer, checkpoints, run_callbacks, sheet_images
from toponets_exp.checks import boolean, integer, number
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation import EvalSettings, check_model_settings, eval_settings, positions_for
from toponets_exp.io import write_text
from toponets_exp.resume import RunState, reset_metrics, resume_point
from toponets_exp.resume.run_dir import RESOLVED, ResumePoint
from toponets_exp.topo import TopoLayer, TopoLossCallback
from toponets_exp.topo.tdann_hooks import TDANNSpatial
from toponets_exp.topo.unit_positions import TDANNPositions
from toponets_exp.topo.selection import unique_layers


def seed_and_check(cfg: DictConfig) -> int:
    """Validate `seed` (NumPy's range) and seed every RNG (python, numpy, torch, dataloader workers)."""
    return L.seed_everything(integer("seed", cfg.seed, 0, 2**32 - 1), workers=True, verbose=False)


def overrides() -> list[str]:
    """The command-line overrides of this run (empty outside a Hydra app)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def output_dir(cfg: DictConfig) -> Path:
    """The run directory (Hydra's), created if needed."""
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Plan:
    """What the config says before anything is built: the run directory, the run it continues (if any), the
    checkpoint training starts from, and the checked evaluation settings (None without eval.after_train)."""

    out: Path
    resume: ResumePoint | None
    start_from: Path | str | None  # the resumed run's last.ckpt, else `ckpt_path`
    evaluation: EvalSettings | None


def plan_run(cfg: DictConfig) -> Plan:
    """Check every setting that needs no built object (seed, model and data, trainer, loggers, evaluation) and read
    the run directory; RNGs seeded. A refused setting or resume leaves the run directory as it was."""
    seed_and_check(cfg)
    check_model_data(cfg)
    check_trainer(cfg)
    check_loggers(cfg)
    evaluation = eval_settings(cfg) if boolean("eval.after_train", cfg.eval.after_train) else None
    out = output_dir(cfg)
    resume = resume_point(cfg, out)
    return Plan(out, resume, resume.path if resume is not None else start_checkpoint(cfg), evaluation)


def start_checkpoint(cfg: DictConfig) -> Path | None:
    """`ckpt_path` of a training run: an existing file (a Lightning checkpoint to start from), or null."""
    if cfg.ckpt_path is None:
        return None
    path = Path(str(cfg.ckpt_path)).expanduser()
    if not path.is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path!r} is not a file; give a Lightning checkpoint (.ckpt) to start "
                          "training from its weights and state, resume=<run dir> to continue a run, or leave it null")
    return path


@dataclass(frozen=True)
class Run:
    """A training run's objects, ready to fit."""

    plan: Plan
    datamodule: L.LightningDataModule
    module: L.LightningModule
    layers: list[TopoLayer]  # each topo layer's module once: what the evaluation and the W&B sheet images map
    topo: TopoLossCallback
    best: ModelCheckpoint
    state: RunState
    loggers: list[Logger]
    trainer: L.Trainer


def tdann_loss(cfg: DictConfig, plan: Plan, net: nn.Module,
               datamodule: L.LightningDataModule) -> tuple[TDANNSpatial | None, dict[str, TDANNPositions]]:
    """With topo.loss=tdann: TDANN's loss on its blocks at their positions, and those positions if they are to be
    written to the run directory (made now, or read from topo.tdann.positions_dir); else (None, {})."""
    if cfg.topo.loss != TDANN:
        return None, {}
    settings = tdann_settings(cfg.topo.get("tdann"))
    positions, new = run_positions(settings, net, datamodule, cfg.seed, plan.out, plan.resume is not None,
                                   placement_safe_point())
    loss = build_tdann(settings, net, positions, number("topo.weight", cfg.topo.weight, 0.0), cfg.seed)
    return loss, positions if new else {}


def build_run(cfg: DictConfig, plan: Plan) -> Run:
    """Data, model, topographic losses, checkpoints, loggers and trainer (each checked as it is made), then the run
    directory prepared by global rank 0: metrics.csv cut to the resumed checkpoint, the resolved config written."""
    datamodule = build_datamodule(cfg)
    module = build_module(cfg)
    module.example_input_array = example_input(cfg, datamodule)
    selected = select_topo_layers(cfg, module.net)
    layers = unique_layers(selected)
    if plan.evaluation is not None:  # before a logger writes its run id
        check_model_settings(plan.evaluation, module.net, layers)
        positions_for(plan.evaluation, module.net, {})
    tdann, positions = tdann_loss(cfg, plan, module.net, datamodule)
    topo = build_topo(cfg, selected, tdann)
    best, state = checkpoints(cfg, module, plan.out)
    loggers = build_loggers(cfg)
    callbacks = run_callbacks(cfg, topo, best, state, sheet_images(cfg, layers, loggers))
    trainer = build_trainer(cfg, callbacks, loggers, plan.out)  # knows this process's global rank
    if trainer.is_global_zero:  # the one writer of the run directory
        reset_metrics(plan.out, plan.resume)
        if positions:
            write_positions(positions, plan.out)
        if plan.resume is None:
            write_text(plan.out / RESOLVED, OmegaConf.to_yaml(cfg, resolve=True))
    return Run(plan, datamodule, module, layers, topo, best, state, loggers, trainer)
