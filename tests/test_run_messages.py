"""What a run tells its user: before its first step, what a short run changes silently (a warm-up it never
completes, a training that ends before the first validation); epochs counted right; no notice nobody can act on."""

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


def test_the_progress_bar_counts_epochs_of_an_endless_run_without_a_last_one():
    from types import SimpleNamespace

    from toponets_exp.lit import RunProgressBar

    bar = RunProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=-1)
    assert bar._get_train_description(1).strip() == "Epoch 1"
    bar._trainer = SimpleNamespace(max_epochs=8)
    assert bar._get_train_description(1).strip() == "Epoch 1/7"


def test_a_resumed_runs_checkpoint_directory_is_no_warning():
    import warnings

    from toponets_exp.console import quiet_third_party

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_third_party()
        warnings.warn("Checkpoint directory /runs/a/checkpoints exists and is not empty.", UserWarning)
        warnings.warn("another notice", UserWarning)
    assert [str(w.message) for w in seen] == ["another notice"]


def test_progress_off_a_terminal_is_one_log_line_per_epoch_with_each_metric_beside_its_label(caplog, tmp_path):
    import io
    import logging
    import re

    import lightning as L
    from lightning.pytorch.demos.boring_classes import BoringModel

    from toponets_exp.lit import EpochLines, RunProgressBar, progress_callback

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_callback(io.StringIO()), EpochLines)  # a file, a pipe, a Slurm log
    assert isinstance(progress_callback(Terminal()), RunProgressBar)

    class Logged(BoringModel):
        def validation_step(self, batch, batch_idx):
            out = super().validation_step(batch, batch_idx)
            self.log("val/loss", out["x"], prog_bar=True)
            return out

    trainer = L.Trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=2, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, callbacks=[EpochLines()],
                        default_root_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="toponets_exp.lit.progress"):
        trainer.fit(Logged())
    lines = [r.getMessage() for r in caplog.records if r.name == "toponets_exp.lit.progress"]
    assert len(lines) == 2, lines
    for epoch, line in enumerate(lines):
        assert re.fullmatch(rf"Epoch {epoch}/1, step {3 * (epoch + 1)}: val/loss -?[0-9.e+-]+", line), line
