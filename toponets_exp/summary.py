"""A training run's summary: what summary.json holds, its headline numbers for W&B, and the lines printed at the
end."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger

from toponets_exp.resume.run_dir import SUMMARY, ResumePoint, run_command

log = logging.getLogger(__name__)


def finished_summary(out: Path, resume: ResumePoint) -> dict[str, Any]:
    """A finished run resumed with no further stop criteria: say so, change nothing, return its summary."""
    summary = json.loads((out / SUMMARY).read_text())
    best = summary.get("best_checkpoint") or str(resume.path)
    log.info("The run in %s has finished (%d optimizer steps; %s): nothing to train, and its results stay as they "
             "are. Train further with a larger trainer.max_epochs or trainer.max_steps; evaluate again with: %s", out,
             resume.step, SUMMARY, run_command(["task=eval", f"ckpt_path={best}"]))
    return summary


def headline(summary: dict[str, Any]) -> dict[str, float]:
    """The run's headline numbers for the W&B run summary."""
    values = {f"test/{k}": v for k, v in summary["test"].items()}
    values["topo/final_mean_unweighted"] = summary["topo"]["mean_unweighted"]
    values.update({f"eval/{k}": v for k, v in summary.get("eval", {}).items() if isinstance(v, (int, float))})
    accuracy = summary.get("eval", {}).get("accuracy") or {}
    if accuracy.get("value") is not None:
        values["eval/accuracy"] = accuracy["value"]
    return values


def wandb_runs(loggers: list[Any]) -> dict[str, Any]:
    """Where each W&B run lives: its local directory, and the URL when online."""
    runs = [{"dir": str(Path(lg.experiment.dir).parent), "url": None if lg.experiment.offline else lg.experiment.url}
            for lg in loggers if isinstance(lg, WandbLogger)]
    return {"wandb": runs} if runs else {}


def print_summary(summary: dict[str, Any]) -> None:
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
        accuracy = ev.get("accuracy") or {}
        if accuracy.get("value") is not None:
            lines.append(f"accuracy {accuracy['value']:.4f} ({accuracy['what']})")
    for run in summary.get("wandb", []):
        lines.append(f"W&B run {run['url']}" if run["url"] else f"W&B offline run {run['dir']} "
                     f"(upload with: wandb sync {run['dir']})")
    lines.append(f"wall time {summary['wall_time_s']:.1f} s")
    evaluated = ", report.json, figures/" if "eval" in summary else ""
    lines.append(f"outputs: {summary['output_dir']} (summary.json, metrics.csv, checkpoints/{evaluated})")
    log.info("Summary\n%s", "\n".join(lines))
