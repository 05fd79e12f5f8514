"""Run `run.py` in a subprocess, as a user would."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1", "data.image_size=8", "data.batch_size=16",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "eval.after_train=false"]
FAST_EVAL = ["eval.pruning=[0.0,0.5]", "eval.downsampling=[1,2]", "eval.metric_batches=2"]
# Three epochs of six batches, every step logged: long enough to interrupt inside an epoch and at its end.
RESUMABLE = ["trainer.max_epochs=3", "trainer.limit_train_batches=6", "trainer.limit_val_batches=2",
             "trainer.limit_test_batches=2", "trainer.log_every_n_steps=1",
             "data.image_size=8", "data.batch_size=16", "trainer.enable_progress_bar=false",
             "trainer.enable_model_summary=false", "eval.after_train=false"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run: W&B offline and quiet, unbuffered output, plus `extra`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline",
           "WANDB_SILENT": "true", **extra}
    env.pop("WANDB_API_KEY", None)
    return env


def run_cli(*args: str, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python run.py ARGS` from the repo root; stdout and stderr merged into .stdout."""
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=env or cli_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def start_cli(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """`python run.py ARGS` started in the background, its output into `log` (or discarded)."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child holds it
    return subprocess.Popen([sys.executable, "run.py", *args], cwd=ROOT, env=env or cli_env(), stdout=out,
                            stderr=subprocess.STDOUT)


def wait_for_writes(path: Path, count: int, proc: subprocess.Popen | None = None, timeout: float = 300.0) -> None:
    """Block until `path` has been (re)written `count` times (each write renames a new file over it)."""
    seen: set[tuple[int, int]] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise AssertionError(f"{path} was written {len(seen)} times, expected {count}")
        try:
            stat = path.stat()
            seen.add((stat.st_ino, stat.st_mtime_ns))
        except FileNotFoundError:
            pass
        time.sleep(0.001)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def net_params(ckpt: Path) -> dict[str, torch.Tensor]:
    """The backbone parameters and buffers of one of our Lightning checkpoints."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.")}


def checkpoint_step(ckpt: Path) -> int:
    """The optimizer step a Lightning checkpoint was taken at."""
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
