"""task=eval: the brain-likeness report of a checkpoint (toponets_exp.evaluation)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from toponets_exp.errors import ConfigError
from toponets_exp.evaluation import Subject, eval_plan, evaluate, load_for_eval, task_data
from toponets_exp.build import build_loggers, output_dir, seed_and_check


def run_eval(cfg: DictConfig) -> dict[str, Any]:
    """Load `ckpt_path` into `model=` and evaluate it on the task's data; report.json and figures/ in the run dir."""
    seed_and_check(cfg)
    ev, kind = eval_plan(cfg)
    if not cfg.ckpt_path:
        raise ConfigError("task=eval needs ckpt_path=<a .ckpt of ours, an official TopoNets file, or an HF folder>")
    loaded = load_for_eval(cfg, cfg.ckpt_path)
    data, misfit = task_data(cfg, loaded.model, kind)
    subject = Subject(loaded.net, loaded.layers, loaded.model, str(cfg.ckpt_path), loaded.architecture,
                      loaded.topo_weight)
    return evaluate(subject, data, misfit, ev, kind, output_dir(cfg), build_loggers(cfg))
