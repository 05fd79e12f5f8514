"""task=eval: the brain-likeness report of a checkpoint (toponets_exp.evaluation)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from toponets_exp.build import build_loggers, output_dir, overrides, seed_and_check
from toponets_exp.build.topo import check_topo_keys
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation import (check_model_settings, eval_settings, evaluate, load_for_eval, positions_for,
                                     task_data)
from toponets_exp.loggers import log_report
from toponets_exp.resume.run_dir import run_command
from toponets_exp.resume.stop import stopping_on_signals


def run_eval(cfg: DictConfig) -> dict[str, Any]:
    """Load `ckpt_path` into `model=` and evaluate it on the task's data; report.json and figures/ in the run dir,
    and to W&B with logger=wandb."""
    seed_and_check(cfg)
    settings = eval_settings(cfg)
    check_topo_keys(cfg)
    if not cfg.ckpt_path:
        raise ConfigError("task=eval needs ckpt_path=<a .ckpt of ours, an official TopoNets file, a TDANN or TopoLM "
                          "file, or an HF folder>")
    model = load_for_eval(cfg, cfg.ckpt_path)
    check_model_settings(settings, model.net, model.layers)
    positions = positions_for(settings, model.net, model.model_args)
    data = task_data(cfg, model, settings.kind)
    out, loggers = output_dir(cfg), build_loggers(cfg)
    stopped = f"no report.json is written; the requeued job evaluates again, as does: {run_command(overrides())}"
    with stopping_on_signals(stopped):  # a Slurm signal stops the evaluation within seconds
        report = evaluate(model, data, settings, out, positions)
    log_report(loggers, report, out)
    return report
