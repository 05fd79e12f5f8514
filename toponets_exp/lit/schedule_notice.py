"""Say at the start of training what a short run changes silently: a warm-up the run never completes, and a run
that ends before its first validation (no best checkpoint: the last weights are tested and evaluated)."""

from __future__ import annotations

import logging
import math

import lightning as L
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


def first_validation_batch(val_check_batch: float, every_n_epochs: int | None, epoch_batches: float) -> float:
    """The training batches before the first validation (Lightning's rule: every `val_check_batch` batches of the
    run without check_val_every_n_epoch, else of the epochs it names)."""
    if every_n_epochs is None:
        return val_check_batch
    return (every_n_epochs - 1) * epoch_batches + min(val_check_batch, epoch_batches)


def trained_batches(max_steps: int, max_epochs: int | None, epoch_batches: float, accumulate: int) -> float:
    """The training batches the stop criteria allow (inf without one)."""
    limits = [math.inf]
    if max_steps != -1:
        limits.append(max_steps * accumulate)
    if max_epochs not in (None, -1):
        limits.append(max_epochs * epoch_batches)
    return min(limits)


class ScheduleNotice(Callback):
    """Warns, before the first step, when the LR warm-up is longer than training or no validation will run."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        steps = trainer.estimated_stepping_batches
        schedule = getattr(pl_module, "lr_schedule", None)
        warmup = getattr(schedule, "keywords", {}).get("warmup_steps", 0)
        if warmup and warmup >= steps:
            log.warning("lr_schedule.warmup_steps=%d is not shorter than training (%d optimizer steps): the LR never "
                        "reaches its peak (optim.lr)", warmup, steps)
        if trainer.limit_val_batches == 0:  # validation turned off: the user chose to test the last weights
            return
        epoch_batches = trainer.num_training_batches
        first = first_validation_batch(trainer.val_check_batch, trainer.check_val_every_n_epoch, epoch_batches)
        allowed = trained_batches(trainer.max_steps, trainer.max_epochs, epoch_batches,
                                  trainer.accumulate_grad_batches)
        if allowed < first:
            log.warning("No validation will run: training stops after %d optimizer steps, before the first validation "
                        "(after %d; trainer.val_check_interval / check_val_every_n_epoch), so there is no best "
                        "checkpoint and the test and evaluation use the last weights", steps,
                        math.ceil(first / trainer.accumulate_grad_batches))
