"""Which checkpoint a training run starts from, and what of its run directory it keeps."""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from toponets_exp.errors import ConfigError
from toponets_exp.resume.metric_rows import METRIC_ROWS, truncate_metrics
from toponets_exp.resume.run_state import LAST
from toponets_exp.resume.slurm import requeued

log = logging.getLogger(__name__)
RESOLVED = "config_resolved.yaml"
SUMMARY = "summary.json"
# Keys a resumed run may change: when to stop, and how it is run or shown, not what it computes.
MAY_CHANGE = ("resume", "ckpt_path", "trainer.max_epochs", "trainer.max_steps", "trainer.max_time",
              "trainer.enable_progress_bar", "trainer.enable_model_summary", "data.num_workers", "data.pin_memory",
              "eval.device")


class ResumePoint(NamedTuple):
    """The checkpoint a run continues from, the optimizer step it was taken at and the metrics.csv rows before it;
    `finished`: the run has ended and its stop criteria reach no further."""

    path: Path
    step: int
    metric_rows: int = 0
    finished: bool = False


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys → leaf values of a plain nested dict."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _check_same_config(cfg: DictConfig, out: Path) -> None:
    """A resumed run must compute what the interrupted one computed (stop criteria may change)."""
    saved_file = out / RESOLVED
    if not saved_file.is_file():
        return
    saved = _flatten(OmegaConf.to_container(OmegaConf.load(saved_file), resolve=False))
    now = _flatten(OmegaConf.to_container(cfg, resolve=True))
    differ = sorted(k for k in saved.keys() | now.keys()
                    if saved.get(k) != now.get(k) and not any(k == m or k.startswith(m + ".") for m in MAY_CHANGE))
    if differ:
        shown = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in differ[:5])
        raise ConfigError(f"resume={out}: the config differs from the run's {RESOLVED} ({shown}); resume with the "
                          "run's own overrides (only stop criteria such as trainer.max_epochs may change)")


def _read_position(ckpt: Path) -> tuple[int, int]:
    """The optimizer step a run checkpoint was taken at, and the metrics.csv rows that precede it."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)  # two numbers: no full read
        return int(state["global_step"]), int(state.get(METRIC_ROWS, 0))
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise ConfigError(f"{ckpt} is not a readable Lightning checkpoint ({type(err).__name__}: {err}); "
                          "delete it to start the run again") from err


def _extends(cfg: DictConfig, summary: dict[str, Any]) -> bool:
    """Whether the config's stop criteria let a finished run train further (a larger trainer.max_epochs or
    max_steps, or a time limit)."""
    trainer = cfg.get("trainer", {})
    epochs, steps = trainer.get("max_epochs"), trainer.get("max_steps")
    return (trainer.get("max_time") is not None or epochs == -1
            or (isinstance(epochs, int) and epochs > summary.get("epochs", 0))
            or (isinstance(steps, int) and steps > max(summary.get("optimizer_steps", 0), 0)))


def run_command(given: Sequence[str]) -> str:
    """`python run.py` with these overrides, quoted for a POSIX shell (an override may hold spaces or quotes)."""
    return shlex.join(["python", "run.py", *given])


def _restart_command(out: Path, *extra: str) -> str:
    """The command that starts the run of `out` again, in a new directory, from its first start's overrides."""
    saved = out / ".hydra" / "overrides.yaml"
    given = [str(o) for o in OmegaConf.load(saved) if not str(o).startswith(("hydra.run.dir=", "resume="))] \
        if saved.is_file() else []
    return run_command([*given, *extra])


def resume_command(out: Path) -> str:
    """The command that continues the run of `out` in place."""
    return _restart_command(out, f"resume={out}")


def _check_unused(out: Path, last: Path) -> None:
    """A fresh run starts in a directory that holds no run: one with a checkpoint or summary is continued with
    resume=, one whose run stopped before its first checkpoint is started again elsewhere (global rank 0 checks:
    the other ranks start while it writes the directory)."""
    if rank_zero_only.rank != 0:
        return
    for used in (last, out / SUMMARY):
        if used.exists():
            raise ConfigError(f"the run directory {out} already holds a run ({used.name}); continue it with "
                              f"resume={out}, or choose another hydra.run.dir")
    started = [name for name in (RESOLVED, "metrics.csv", "checkpoints") if (out / name).exists()]
    if started:
        raise ConfigError(f"the run directory {out} holds a run that stopped before its first checkpoint "
                          f"({', '.join(started)}); a new run does not mix with it: leave hydra.run.dir unset (a new "
                          f"directory) or choose another, or delete {out}")


def resume_point(cfg: DictConfig, out: Path) -> ResumePoint | None:
    """The checkpoint to continue from (resume=<dir>, or a requeued Slurm job's own last.ckpt), else None; reads the
    run directory and writes nothing, so a refused resume leaves it as it was.

    A fresh run refuses a directory that already holds a run, finished, resumable or not. A resumed run must have the
    same config (stop criteria may change); one that has finished, and whose stop criteria do not reach further,
    comes back with `finished` set: there is nothing to train.
    """
    last = out / "checkpoints" / LAST
    if cfg.get("resume"):
        wanted = Path(str(cfg.resume)).resolve()
        if wanted != out.resolve():
            raise ConfigError(f"resume={cfg.resume} but the run directory is {out}; leave hydra.run.dir unset "
                              "when resuming")
        if not last.is_file():
            raise ConfigError(f"resume={cfg.resume}: the run stopped before its first checkpoint ({last} does not "
                              f"exist), so there is nothing to continue; start it again in a new directory: "
                              f"{_restart_command(out)}")
    elif requeued():
        if not last.is_file():
            return None
    else:
        _check_unused(out, last)
        return None
    _check_same_config(cfg, out)
    step, rows = _read_position(last)
    finished = (out / SUMMARY).is_file() and not _extends(cfg, json.loads((out / SUMMARY).read_text()))
    return ResumePoint(last, step, rows, finished)


def reset_metrics(out: Path, resume: ResumePoint | None) -> None:
    """metrics.csv keeps the rows before the resumed checkpoint, or none when a requeued job starts over (written by
    global rank 0 alone; the other ranks never touch it)."""
    if resume is None:
        if requeued():
            log.info("Requeued job: no %s yet, starting the run from the beginning", out / "checkpoints" / LAST)
            truncate_metrics(out / "metrics.csv", 0)
        return
    dropped = truncate_metrics(out / "metrics.csv", resume.metric_rows)
    log.info("Resuming %s from %s (optimizer step %d; %d metric rows after it dropped)", out, resume.path,
             resume.step, dropped)
