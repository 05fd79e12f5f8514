"""How training shows its progress: Lightning's rich bar on a terminal, one log line per epoch elsewhere."""

from __future__ import annotations

import logging
import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

log = logging.getLogger(__name__)


class RunProgressBar(RichProgressBar):
    """'Epoch 3/7' for a run of 8 epochs, 'Epoch 3' for one bounded by steps or time (max_epochs=-1), not 'Epoch 3/-2'."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = super()._get_train_description(current_epoch)
        if self.trainer.max_epochs == -1:
            description = description.replace(f"Epoch {current_epoch}/-2", f"Epoch {current_epoch}")
        return description


def epoch_label(trainer: L.Trainer) -> str:
    """'Epoch 3/7, step 120' (0-based epoch of max_epochs - 1, as the rich bar counts), 'Epoch 3, step 120' when
    training has no last epoch."""
    last = f"/{trainer.max_epochs - 1}" if trainer.max_epochs not in (None, -1) else ""
    return f"Epoch {trainer.current_epoch}{last}, step {trainer.global_step}"


class EpochLines(ProgressBar):
    """Progress where the output is not a terminal (a Slurm log, a redirected file): a log line at the end of each
    epoch and of each validation inside an epoch, every metric beside its label (a bar's redraws would be
    garbled there)."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _line(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """One line: where training is, then 'name value' for every progress-bar metric."""
        if not self._enabled or not trainer.is_global_zero:
            return
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        log.info("%s: %s", epoch_label(trainer), shown or "no metrics yet")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._line(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking \
                and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._line(trainer, pl_module)


def progress_callback(stream: Any = None) -> ProgressBar:
    """RunProgressBar when `stream` (default stdout) is a terminal, else EpochLines."""
    stream = sys.stdout if stream is None else stream
    return RunProgressBar() if getattr(stream, "isatty", lambda: False)() else EpochLines()
