"""RunState: the one owner of `checkpoints/last.ckpt` — when it is captured and written, the RNGs and loader
positions it carries, the metrics.csv rows it accounts for, and the stop on a Slurm signal."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint

from toponets_exp.data.resumable import ResumableLoader
from toponets_exp.io import replacing
from toponets_exp.resume.metric_rows import METRIC_ROWS, count_rows
from toponets_exp.resume.rng import restore_rng, rng_state
from toponets_exp.resume.stop import StopSignals, reclaim_term, stop_if_caught

log = logging.getLogger(__name__)
LAST = "last.ckpt"
FORMER_RNG_KEY = "RNGState"  # where checkpoints of earlier versions keep the RNGs


class RunState(Checkpoint):
    """Keeps `<dirpath>/last.ckpt` current: every `every_n_train_steps` optimizer steps, after each epoch and
    validation, at the end of training, and after a Slurm signal.

    The state is captured where Lightning resumes exactly: the end of a training batch that is not an epoch's
    last (after that one Lightning would skip the epoch's validation on resume, so a capture due there waits for
    the epoch's end), the end of a validation inside an epoch, the end of each epoch (after its validation and
    ModelCheckpoint's update: Lightning runs Checkpoint callbacks last) and the end of training. It is written at
    the next quiet point (the start of the next batch, validation or epoch, or the end), once the metrics of
    everything before it are in metrics.csv; the checkpoint records how many rows that is, so a resumed run keeps
    exactly those rows. Between capture and write no parameter, optimizer or loader state changes. The file is
    written beside last.ckpt and renamed over it: a crash leaves the previous one whole. It carries the RNGs of
    Python, NumPy and torch, and the training loaders' positions, handed back before the first resumed batch.

    Inside a Slurm job, USR1/USR2/TERM only set a flag (toponets_exp.resume.stop); the state is captured at the end
    of the current training batch (every rank at the same step) and written at the next quiet point. USR1/USR2 then
    hand over to submitit's own handler, which requeues the job with the same arguments (outside submitit: `scontrol
    requeue`); TERM means Slurm already ends the job, so the process just exits. A signal during the unit placement
    before the first step stops it there, with nothing saved; one during the test after training stops the test.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int, metrics_csv: str | Path) -> None:
        super().__init__()
        self.path = Path(dirpath) / LAST
        self.metrics_csv = Path(metrics_csv)
        self.every_n_train_steps = every_n_train_steps
        self._pending: dict[str, Any] | None = None
        self._wanted = False
        self._stepped = False
        self._loader_states: list[dict[str, int]] = []
        self.signals = StopSignals()         # the fit's signal flag (the signal this rank caught)
        self._stopping: int | None = None    # the signal every rank stops for

    # --- capture and write ---------------------------------------------------------------------------------------
    def request(self) -> None:
        """Capture the state at the next point Lightning resumes from exactly."""
        self._wanted = True

    def _capture(self, trainer: L.Trainer) -> None:
        """Take the resumable state now (Lightning's checkpoint contents; written by `write`)."""
        self._pending = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)  # as save_checkpoint
        self._wanted = False

    def write(self, trainer: L.Trainer) -> Path | None:
        """Write the captured state, with the number of metric rows before it (every rank calls this)."""
        if self._pending is None:
            return None
        checkpoint, self._pending = self._pending, None
        if trainer.is_global_zero:  # the strategy writes on rank 0 only (sharded strategies are refused)
            checkpoint[METRIC_ROWS] = count_rows(self.metrics_csv)
            with replacing(self.path) as tmp:
                trainer.strategy.save_checkpoint(checkpoint, tmp)
        trainer.strategy.barrier("last.ckpt")
        return self.path

    def _quiet_point(self, trainer: L.Trainer) -> None:
        """Write what was captured; after a signal, once the state is captured, requeue or exit."""
        path = self.write(trainer)
        if self._stopping is None or self._wanted:
            return
        log.warning("Saved %s at step %d after %s", path or self.path, trainer.global_step,
                    signal.Signals(self._stopping).name)
        self.signals.exit(self._stopping)

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        self._stepped = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.signals.installed:  # a Slurm job: every rank stops at the same step
            caught = torch.tensor(self.signals.caught or 0, device=pl_module.device)
            caught = int(trainer.strategy.reduce(caught, reduce_op="max"))
            if caught and self._stopping is None:
                self.request()  # captured now, or at the epoch's end after an epoch's last batch
                self._stopping = caught
        stepped, self._stepped = self._stepped, False  # no capture in the middle of gradient accumulation
        n = self.every_n_train_steps
        if stepped and n and trainer.global_step % n == 0:
            self.request()
        if stepped and self._wanted and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._capture(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A validation inside an epoch (val_check_interval); at an epoch's end the epoch's end is the point."""
        if not trainer.sanity_checking and trainer.state.fn == "fit" \
                and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._capture(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._capture(trainer)  # after the epoch's validation and ModelCheckpoint (Checkpoint callbacks run last)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._quiet_point(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._quiet_point(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._quiet_point(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is None:  # a capture still pending is of the last batch or epoch: the final state
            self._capture(trainer)
        self.write(trainer)

    # --- what the checkpoint carries -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        restore_rng(state_dict["rng"])

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Keep the loader positions for `on_train_start`; read the RNGs of a checkpoint of an earlier version."""
        fit_state = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        self._loader_states = list(fit_state.get("combined_loader", []))
        callbacks = checkpoint.get("callbacks", {})
        if self.state_key not in callbacks and FORMER_RNG_KEY in callbacks:
            restore_rng(callbacks[FORMER_RNG_KEY])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Hand the saved loader positions to the training loaders before the first batch is drawn.

        Lightning restores them itself only when the train loader is built after the checkpoint is loaded; a module
        whose configure_optimizers asks for `trainer.estimated_stepping_batches` builds it earlier, and the saved
        positions would be dropped. (First, TERM goes back to the flag alone: `reclaim_term`.)
        """
        reclaim_term()
        loaders = trainer.train_dataloader
        if isinstance(loaders, dict):
            loaders = list(loaders.values())
        elif not isinstance(loaders, (list, tuple)):
            loaders = [loaders]
        resumable = [dl for dl in loaders if isinstance(dl, ResumableLoader)]
        if self._loader_states and len(resumable) != len(self._loader_states):
            raise ValueError(f"the checkpoint holds {len(self._loader_states)} training loader positions, the data "
                             f"has {len(resumable)} resumable training loaders")
        for loader, state in zip(resumable, self._loader_states):
            loader.load_state_dict(state)
        self._loader_states = []

    # --- Slurm signals -------------------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.signals.install()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.signals.restore()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        reclaim_term()  # TERM back to the task's flag alone for the test after training

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        """A safe point of the test after training (the task's StopSignals says what becomes of the run)."""
        stop_if_caught("the test of the trained model")
