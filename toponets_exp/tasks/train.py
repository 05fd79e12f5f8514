"""task=train: build the run, fit, test the best checkpoint, evaluate it, write summary.json."""

from __future__ import annotations

import logging
import time
from typing import Any

from omegaconf import DictConfig

from toponets_exp.build import Run, build_run, overrides, plan_run, seed_and_check
from toponets_exp.checks import number
from toponets_exp.evaluation import EvalModel, TaskData, evaluate, no_classifier, positions_for
from toponets_exp.io import write_json
from toponets_exp.loggers import finish_wandb, log_report
from toponets_exp.resume.run_dir import SUMMARY, resume_command
from toponets_exp.resume.stop import stopping_on_signals
from toponets_exp.summary import finished_summary, headline, print_summary, wandb_runs

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train `model` on `data` with the topographic losses of `topo`; returns the summary written to summary.json."""
    start = time.perf_counter()
    plan = plan_run(cfg)  # every setting that needs no object checked; nothing built or written yet
    if plan.resume is not None and plan.resume.finished:
        return finished_summary(plan.out, plan.resume)
    run = build_run(cfg, plan)
    run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=plan.start_from)
    stopped = (f"training has finished (checkpoints/last.ckpt) but {SUMMARY} is not written; the requeued job tests "
               f"and evaluates it again, as does: {resume_command(plan.out)}")
    with stopping_on_signals(stopped, run.state.signals.caught):  # a Slurm signal stops the test or evaluation
        summary = _test_and_evaluate(cfg, run, start)
    finish_wandb(run.loggers, headline(summary))
    return summary


def _test_and_evaluate(cfg: DictConfig, run: Run, start: float) -> dict[str, Any]:
    """Test the best checkpoint, evaluate it (eval.after_train) and write summary.json; returns the summary."""
    plan = run.plan
    best = run.best.best_model_path or None
    test = run.trainer.test(run.module, datamodule=run.datamodule, ckpt_path=best, verbose=False)[0]
    summary = {
        "task": "train", "output_dir": str(plan.out), "overrides": overrides(), "seed": cfg.seed,
        "epochs": run.trainer.current_epoch, "optimizer_steps": run.trainer.global_step,
        "test": {k.split("/", 1)[1]: float(v) for k, v in test.items() if k.startswith("test/")},
        "best_checkpoint": best,
        "best_score": float(run.best.best_model_score) if run.best.best_model_score is not None else None,
        "last_checkpoint": str(run.state.path), "resumed_from_step": plan.resume.step if plan.resume else None,
        "topo": {"weight": number("topo.weight", cfg.topo.weight), "loss": cfg.topo.loss, **run.topo.summary()},
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    if run.trainer.is_global_zero:
        if plan.evaluation is not None:
            report = _evaluate(cfg, run, best or str(run.state.path))
            log_report(run.trainer.loggers, report, plan.out)
            summary["eval"] = {"report": str(plan.out / "report.json"), **report["aggregate"],
                               "accuracy": report["accuracy"]}
            summary["wall_time_s"] = round(time.perf_counter() - start, 1)
        summary.update(wandb_runs(run.loggers))
        write_json(plan.out / SUMMARY, summary)
        print_summary(summary)
    return summary


def _evaluate(cfg: DictConfig, run: Run, checkpoint: str) -> dict[str, Any]:
    """The evaluation of the trained backbone (the weights trainer.test used) on its own data, from the run's seed."""
    if checkpoint == str(run.state.path):
        log.info("No validation ran (trainer.val_check_interval / check_val_every_n_epoch), so there is no best "
                 "checkpoint: the evaluation uses the last weights (%s)", checkpoint)
    seed_and_check(cfg)
    model = EvalModel(run.module.net, run.layers, cfg.model, checkpoint, {}, run.topo.weight)
    positions = positions_for(run.plan.evaluation, model.net, {})
    trunk = no_classifier(cfg.model) if run.plan.evaluation.kind == "vision" else None
    data = TaskData(run.datamodule, no_classifier=trunk)
    return evaluate(model, data, run.plan.evaluation, run.plan.out, positions)
