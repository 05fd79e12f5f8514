"""A short run says, before its first step, what it changes silently: a warm-up it never completes, and a training
that ends before the first validation."""

import functools
import logging

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from toponets_exp.lit import ScheduleNotice
from toponets_exp.lit.optim import warmup_cosine
from toponets_exp.lit.schedule_notice import first_validation_batch, trained_batches


class Tiny(L.LightningModule):
    def __init__(self, warmup: int) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.lr_schedule = functools.partial(warmup_cosine, warmup_steps=warmup)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).square().mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch[0]).square().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(caplog, warmup: int, **trainer) -> list[str]:
    data = DataLoader(TensorDataset(torch.randn(40, 2)), batch_size=4)  # 10 batches an epoch
    run = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, callbacks=[ScheduleNotice()], **trainer)
    with caplog.at_level(logging.WARNING, logger="toponets_exp.lit.schedule_notice"):
        run.fit(Tiny(warmup), data, data)
    messages = [r.getMessage() for r in caplog.records if r.name == "toponets_exp.lit.schedule_notice"]
    caplog.clear()
    return messages


def test_a_short_run_says_its_warmup_is_cut_and_no_validation_runs(caplog):
    said = fit(caplog, 30, max_steps=20, max_epochs=-1, val_check_interval=25, check_val_every_n_epoch=None)
    assert said == [
        "lr_schedule.warmup_steps=30 is not shorter than training (20 optimizer steps): the LR never reaches its "
        "peak (optim.lr)",
        "No validation will run: training stops after 20 optimizer steps, before the first validation (after 25; "
        "trainer.val_check_interval / check_val_every_n_epoch), so there is no best checkpoint and the test and "
        "evaluation use the last weights"]
    assert fit(caplog, 5, max_epochs=2) == []  # validation every epoch, warm-up inside training
    assert fit(caplog, 0, max_epochs=1, check_val_every_n_epoch=2)[0].startswith("No validation will run")
    assert fit(caplog, 0, max_steps=5, limit_val_batches=0) == []  # validation turned off on purpose


def test_the_first_validation_and_the_batches_trained():
    assert first_validation_batch(100, None, 20) == 100
    assert first_validation_batch(20, 1, 20) == 20 and first_validation_batch(5, 3, 20) == 45
    assert trained_batches(20, -1, 10, 2) == 40 and trained_batches(-1, 3, 10, 1) == 30
    assert trained_batches(-1, -1, 10, 1) == float("inf")
