"""The run checkpoint (`checkpoints/last.ckpt`, written atomically) and the RNG state it carries."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint

from toponets_exp.io import replacing

LAST = "last.ckpt"
METRIC_ROWS = "metrics_rows"  # checkpoint key: rows of metrics.csv that precede this checkpoint's state


def count_rows(metrics_csv: Path) -> int:
    """Data rows of a metrics CSV (0 when it does not exist yet)."""
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


class RunCheckpoint(Checkpoint):
    """Keeps `<dirpath>/last.ckpt` current: every `every_n_train_steps` optimizer steps, after each epoch and
    validation, at the end of training, and on request (preemption).

    The state is captured where Lightning resumes exactly: the end of a training batch that is not an epoch's
    last (after that one Lightning would skip the epoch's validation on resume, so a capture due there waits for
    the epoch's end), the end of a validation inside an epoch, the end of each epoch (after its validation and
    ModelCheckpoint's update: Lightning runs Checkpoint callbacks last) and the end of training. It is written at
    the next quiet point (the start of the next batch, validation or epoch, or the end), once the metrics of
    everything before it are in metrics.csv; the checkpoint records how many rows that is, so a resumed run keeps
    exactly those rows. Between capture and write no parameter, optimizer or loader state changes. The file is
    written beside last.ckpt and renamed over it: a crash leaves the previous one whole.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int, metrics_csv: str | Path) -> None:
        super().__init__()
        if isinstance(every_n_train_steps, bool) or not isinstance(every_n_train_steps, int) \
                or every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be an integer >= 0 (0: never by step), "
                             f"got {every_n_train_steps!r}")
        self.path = Path(dirpath) / LAST
        self.metrics_csv = Path(metrics_csv)
        self.every_n_train_steps = every_n_train_steps
        self._pending: dict[str, Any] | None = None
        self._wanted = False
        self._stepped = False

    def request(self) -> None:
        """Capture the state at the next point Lightning resumes from exactly."""
        self._wanted = True

    @property
    def requested(self) -> bool:
        """Whether a capture is still due."""
        return self._wanted

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

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        self._stepped = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
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
        self.write(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is None:  # a capture still pending is of the last batch or epoch: the final state
            self._capture(trainer)
        self.write(trainer)


class RNGState(Callback):
    """Saves and restores the RNGs of Python, NumPy and torch (CPU and CUDA) with each checkpoint."""

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = random.getstate()
        kind, keys, *rest = np.random.get_state()
        return {
            "python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), *rest],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, *rest = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
