"""Image-classification LightningModule, generic over the backbone; knows nothing of TopoLoss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from toponets_exp.lit.epoch_metrics import ResumableEpochMetrics
from toponets_exp.lit.optim import OptimizerFactory, ScheduleFactory, optimizer_config


def head_outputs(net: nn.Module) -> int:
    """The class count of a classifier backbone: the outputs of its last Linear layer (its head)."""
    heads = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not heads:
        raise TypeError(f"{type(net).__name__} has no Linear head to read the class count from; pass num_classes")
    return heads[-1].out_features


class ImageClassifier(ResumableEpochMetrics):
    """Cross-entropy training of `net` with top-1 accuracy from torchmetrics."""

    monitor, monitor_mode = "val/acc", "max"

    def __init__(self, net: nn.Module, num_classes: int | None = None, *, optimizer: OptimizerFactory,
                 lr_schedule: ScheduleFactory | None = None, no_decay_1d: bool = False,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        if num_classes is None:  # the backbone's own: its classifier head's outputs (saved as the hyperparameter)
            num_classes = head_outputs(net)
        self.save_hyperparameters(ignore=["net", "optimizer", "lr_schedule"])  # the run's config holds those
        self.net, self.optimizer, self.lr_schedule = net, optimizer, lr_schedule
        self.accuracy = nn.ModuleDict({s: MulticlassAccuracy(num_classes, average="micro")
                                       for s in ("train_", "val_", "test_")})
        # Training-epoch aggregates live in checkpoints, so an epoch resumed mid-way reports the same values.
        self.train_loss = MeanMetric()
        for metric in (self.train_loss, self.accuracy["train_"]):
            metric.persistent(True)
        # Sums reduced over DDP ranks: the mean over the whole split, however unevenly the ranks share it.
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in ("val_", "test_")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        acc = self.accuracy[stage + "_"]
        acc(logits, y)
        if stage == "train":
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
            self.train_loss(loss.detach(), x.shape[0])
            self.log("train/loss_epoch", self.train_loss, on_step=False, on_epoch=True)
        else:
            mean = self.eval_loss[stage + "_"]
            mean(loss.detach(), x.shape[0])
            self.log(f"{stage}/loss", mean, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_start(self) -> None:
        """Fresh epoch aggregates (Lightning skips this hook when it resumes inside an epoch)."""
        self.train_loss.reset()
        self.accuracy["train_"].reset()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer over the backbone's parameters (biases and norm weights without weight decay with
        no_decay_1d), its LR schedule stepped every optimizer step."""
        return optimizer_config(self.net, self.optimizer, self.lr_schedule, self.trainer.estimated_stepping_batches,
                                self.hparams.no_decay_1d)
