"""Causal language-model LightningModule, generic over the backbone; knows nothing of TopoLoss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.text import Perplexity

from toponets_exp.lit.epoch_metrics import ResumableEpochMetrics
from toponets_exp.lit.optim import OptimizerFactory, ScheduleFactory, optimizer_config
from toponets_exp.models.outputs import logits_of


class CausalLM(ResumableEpochMetrics):
    """Next-token cross-entropy training of `net(idx)`; perplexity from torchmetrics on val/test."""

    monitor, monitor_mode = "val/loss", "min"

    def __init__(self, net: nn.Module, *, optimizer: OptimizerFactory, lr_schedule: ScheduleFactory | None = None,
                 no_decay_1d: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "lr_schedule"])  # the run's config holds those
        self.net, self.optimizer, self.lr_schedule = net, optimizer, lr_schedule
        self.perplexity = nn.ModuleDict({s: Perplexity() for s in ("val_", "test_")})
        self.train_loss = MeanMetric()  # the training-epoch mean lives in checkpoints (exact mid-epoch resume)
        self.train_loss.persistent(True)
        # Sums reduced over DDP ranks: the mean over the whole split, however unevenly the ranks share it.
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in ("val_", "test_")})

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, T, V) of token ids (B, T)."""
        return logits_of(self.net(idx))

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean next-token cross-entropy (in float32), with the logits and targets."""
        idx, targets = batch
        logits = self(idx)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return loss, logits, targets

    def on_train_epoch_start(self) -> None:
        """A fresh epoch mean (Lightning skips this hook when it resumes inside an epoch)."""
        self.train_loss.reset()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Next-token loss of a training batch."""
        loss, _, _ = self._loss(batch)
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.train_loss(loss.detach(), batch[0].shape[0])
        self.log("train/loss_epoch", self.train_loss, on_step=False, on_epoch=True)
        return loss

    def _eval_step(self, batch: Any, stage: str) -> None:
        """Loss and perplexity of a held-out batch."""
        loss, logits, targets = self._loss(batch)
        ppl = self.perplexity[stage + "_"]
        ppl(logits.float(), targets)
        mean = self.eval_loss[stage + "_"]
        mean(loss.detach(), batch[0].shape[0])
        self.log(f"{stage}/loss", mean, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/ppl", ppl, on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Loss and perplexity of a validation batch."""
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """Loss and perplexity of a test batch."""
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer (with no_decay_1d, weight decay on ≥2-D weights only), its LR schedule per optimizer step."""
        return optimizer_config(self.net, self.optimizer, self.lr_schedule, self.trainer.estimated_stepping_batches,
                                self.hparams.no_decay_1d)
