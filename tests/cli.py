"""Run `run.py` in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1", "data.image_size=8", "data.batch_size=16",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "eval.after_train=false"]
FAST_EVAL = ["eval.pruning=[0.0,0.5]", "eval.downsampling=[1,2]", "eval.metric_batches=2"]


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python run.py ARGS` from the repo root; stdout and stderr merged into .stdout."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "offline",
           "WANDB_SILENT": "true"}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
