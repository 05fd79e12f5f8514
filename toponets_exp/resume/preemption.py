"""Slurm preemption and time-out: checkpoint at the next step boundary, then requeue (submitit owns requeueing)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from toponets_exp.resume.checkpoint import RunCheckpoint

log = logging.getLogger(__name__)
REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # submitit's warning signal (USR2) and Lightning's usual one
STOP_SIGNALS = (signal.SIGTERM,)                     # Slurm ending the job (scontrol requeue, scancel, preemption)


class Preemption(Callback):
    """Inside a Slurm job, turns USR1/USR2/TERM into: finish the step, write last.ckpt, requeue or stop.

    A signal only sets a flag; the state is captured at the end of the current training batch (every rank at the
    same step) and written at the next quiet point (see RunCheckpoint), so the requeued job resumes exactly.
    USR1/USR2 then hand over to submitit's own handler, which requeues the job with the same arguments (outside
    submitit: `scontrol requeue`); TERM means Slurm already ends the job, so the process just exits.
    """

    def __init__(self, checkpoint: RunCheckpoint) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.caught: int | None = None
        self._stopping: int | None = None
        self._previous: dict[int, Any] = {}

    @staticmethod
    def in_slurm_job() -> bool:
        """Whether this process is a task of a Slurm job."""
        return "SLURM_JOB_ID" in os.environ

    def _flag(self, signum: int, frame: Any) -> None:
        log.warning("Caught %s: checkpointing at the end of this training step", signal.Signals(signum).name)
        self.caught = signum

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not self.in_slurm_job():
            return
        for sig in (*REQUEUE_SIGNALS, *STOP_SIGNALS):
            self._previous[sig] = signal.signal(sig, self._flag)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self._previous:
            return
        caught = torch.tensor(self.caught or 0, device=pl_module.device)
        caught = int(trainer.strategy.reduce(caught, reduce_op="max"))  # every rank stops at the same step
        if caught and self._stopping is None:
            self.checkpoint.request()  # captured now, or at the epoch's end after an epoch's last batch
            self._stopping = caught

    def _stop(self, trainer: L.Trainer) -> None:
        """At a quiet point after a caught signal, once the state is captured: write last.ckpt, requeue or exit."""
        if self._stopping is None or self.checkpoint.requested:
            return
        path = self.checkpoint.write(trainer)
        log.warning("Saved %s at step %d after %s", path, trainer.global_step, signal.Signals(self._stopping).name)
        if self._stopping in STOP_SIGNALS:
            sys.exit(128 + self._stopping)
        self._requeue(self._stopping)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._stop(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(trainer)

    def _requeue(self, signum: int) -> None:
        """Requeue through submitit's handler (it resubmits the same call), else with scontrol; then exit."""
        submitit_handler: Callable[..., Any] | Any = self._previous.get(signal.SIGUSR2)
        if callable(submitit_handler) and getattr(submitit_handler, "__name__", "") == "checkpoint_and_try_requeue":
            submitit_handler(signal.SIGUSR2, None)  # rank 0 requeues and exits; other ranks return
        elif int(os.environ.get("SLURM_PROCID", "0")) == 0:
            subprocess.check_call(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], timeout=60)
        sys.exit(128 + signum)
