"""Lightning's rich progress bar, with an epoch count that reads right when training has no last epoch."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class RunProgressBar(RichProgressBar):
    """'Epoch 3/7' for a run of 8 epochs, 'Epoch 3' for one bounded by steps or time (max_epochs=-1), not 'Epoch 3/-2'."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = super()._get_train_description(current_epoch)
        if self.trainer.max_epochs == -1:
            description = description.replace(f"Epoch {current_epoch}/-2", f"Epoch {current_epoch}")
        return description
