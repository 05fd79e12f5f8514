"""SimCLR contrastive LightningModule (Chen et al. 2020) with TDANN's settings (Margalit et al. 2024), generic over a
backbone of pooled features; knows nothing of topography."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn
from torchmetrics import MeanMetric

from toponets_exp.checks import integer, number
from toponets_exp.errors import ConfigError
from toponets_exp.lit.epoch_metrics import ResumableEpochMetrics
from toponets_exp.lit.optim import OptimizerFactory, ScheduleFactory, optimizer_config
from toponets_exp.lit.simclr_views import stream_seed, two_views, view_settings

log = logging.getLogger(__name__)
VIEWS_RNG = "simclr_views_rng_per_rank"  # checkpoint key: the training views' generator state of every rank
# The views' random streams: (seed, rank, stream) for training, (seed, rank, stream, batch index) for held-out
# batches, (seed, rank, stream, step) for a training generator restarted (each tag non-zero: numpy's SeedSequence
# reads a key padded with zeros as the same key).
STREAMS = {"train": 1, "val": 2, "test": 3, "restarted": 4}


class SimCLR(ResumableEpochMetrics):
    """NT-Xent of two augmented views of every image, through `net` (its output: the pooled features) and an MLP
    projection head. lightly's NTXentLoss gathers the projections of every DDP rank, with gradients, so that each
    image's negatives are the whole global batch's other views (as VISSL's SimclrInfoNCECriterion); held-out batches
    use their own (their split is not shared evenly by the ranks). The views are made here, from a generator seeded
    by (`seed`, DDP rank) whose state every checkpoint keeps, so that a resumed run draws the views the run would
    have drawn; held-out views come from a generator seeded per batch, the same whatever the training did."""

    monitor, monitor_mode = "val/loss", "min"
    uses_labels = False  # the data's labels play no part: the backbone need not classify the data's classes

    def __init__(self, net: nn.Module, *, optimizer: OptimizerFactory, lr_schedule: ScheduleFactory | None = None,
                 no_decay_1d: bool = False, seed: int = 0, temperature: float = 0.1, feature_dim: int = 512,
                 hidden_dim: int = 512, projection_dim: int = 128, views: dict[str, Any] | None = None,
                 pixel_stats: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
        super().__init__()
        integer("model.lit.seed", seed, 0, 2**32 - 1)
        number("model.lit.temperature", temperature, 1e-8)
        for key, value in (("feature_dim", feature_dim), ("hidden_dim", hidden_dim),
                           ("projection_dim", projection_dim)):
            integer(f"model.lit.{key}", value, 1)
        self.settings = view_settings(views)
        self.save_hyperparameters(ignore=["net", "optimizer", "lr_schedule"])  # the run's config holds those
        self.net, self.optimizer, self.lr_schedule = net, optimizer, lr_schedule
        # TDANN's head: Linear(512, 512) + ReLU, Linear(512, 128), with biases and no BatchNorm.
        self.head = SimCLRProjectionHead(feature_dim, hidden_dim, projection_dim, num_layers=2, batch_norm=False)
        self.criterion = NTXentLoss(temperature=float(temperature), gather_distributed=True)
        self.eval_criterion = NTXentLoss(temperature=float(temperature), gather_distributed=False)
        self.train_loss = MeanMetric()  # the training-epoch mean lives in checkpoints (exact mid-epoch resume)
        self.train_loss.persistent(True)
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in ("val_", "test_")})
        self.views_rng: torch.Generator | None = None  # made at the first training step, or from a checkpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's features of images (what an evaluation reads; the head serves the loss only)."""
        return self.net(x)

    def setup(self, stage: str) -> None:
        """The input's standardisation (to undo and redo around the augmentations): `pixel_stats`, else the data
        module's."""
        if self.hparams.pixel_stats is None:
            stats = getattr(self.trainer.datamodule, "pixel_stats", None)
            if stats is None:
                raise ConfigError("model.lit.pixel_stats is null and the data module has no pixel_stats: give the "
                                  "(mean, std) the images are standardised with, e.g. [[0.5,0.5,0.5],[0.5,0.5,0.5]]")
            self.hparams.pixel_stats = tuple(tuple(float(v) for v in part) for part in stats)

    def projections(self, view0: torch.Tensor, view1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's projections of both views, the backbone run once on the two stacked (BatchNorm sees both)."""
        features = self.net(torch.cat((view0, view1)))
        if features.ndim != 2 or features.shape[1] != self.hparams.feature_dim:
            raise ConfigError(f"model.lit.feature_dim={self.hparams.feature_dim} but the backbone gives features of "
                              f"shape {tuple(features.shape)}: SimCLR needs a backbone of pooled features (fc = "
                              "Identity) and their width as model.lit.feature_dim")
        return self.head(features).chunk(2)

    def views_loss(self, view0: torch.Tensor, view1: torch.Tensor, gather: bool = True) -> torch.Tensor:
        """NT-Xent of the two views' projections, in float32 under mixed precision too (similarities / 0.1 in bf16
        would be off by a few hundredths); with `gather`, every rank's projections are the negatives."""
        z0, z1 = self.projections(view0, view1)
        with torch.autocast(z0.device.type, enabled=False):
            return (self.criterion if gather else self.eval_criterion)(z0.float(), z1.float())

    def _training_views(self) -> torch.Generator:
        """The training views' generator: seeded from (seed, global rank) at the first step unless restored."""
        if self.views_rng is None:
            seed = stream_seed(self.hparams.seed, self.global_rank, STREAMS["train"])
            self.views_rng = torch.Generator().manual_seed(seed)
        return self.views_rng

    def on_train_epoch_start(self) -> None:
        """A fresh epoch mean (Lightning skips this hook when it resumes inside an epoch)."""
        self.train_loss.reset()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """NT-Xent of two fresh views of the batch's images, negatives from every rank."""
        images = batch[0]
        loss = self.views_loss(*two_views(images, self._training_views(), self.settings, self.hparams.pixel_stats))
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.train_loss(loss.detach(), images.shape[0])
        self.log("train/loss_epoch", self.train_loss, on_step=False, on_epoch=True)
        return loss

    def _eval_step(self, batch: Any, batch_idx: int, stage: str) -> None:
        """NT-Xent of two views of a held-out batch, drawn from (seed, rank, stage, batch index) alone."""
        images = batch[0]
        gen = torch.Generator().manual_seed(stream_seed(self.hparams.seed, self.global_rank, STREAMS[stage], batch_idx))
        loss = self.views_loss(*two_views(images, gen, self.settings, self.hparams.pixel_stats), gather=False)
        mean = self.eval_loss[stage + "_"]
        mean(loss.detach(), images.shape[0])
        self.log(f"{stage}/loss", mean, on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """NT-Xent of a validation batch."""
        self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """NT-Xent of a test batch."""
        self._eval_step(batch, batch_idx, "test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Every rank's training-views generator state, with the epoch aggregates (every rank runs this hook)."""
        super().on_save_checkpoint(checkpoint)
        state = self._training_views().get_state()
        if self._trainer is not None and self.trainer.world_size > 1:
            checkpoint[VIEWS_RNG] = self.all_gather(state.to(self.device, torch.int32)).cpu().to(torch.uint8)
        else:
            checkpoint[VIEWS_RNG] = state[None].clone()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """This rank's training-views generator; from a checkpoint of another rank count, a fresh one seeded from
        (seed, rank, step), the views then differing from an uninterrupted run's."""
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get(VIEWS_RNG)
        rank, ranks = (self.trainer.global_rank, self.trainer.world_size) if self._trainer is not None else (0, 1)
        self.views_rng = torch.Generator()
        if saved is not None and len(saved) == ranks:
            self.views_rng.set_state(saved[rank].clone())
            return
        step = int(checkpoint.get("global_step", 0))
        log.info("The checkpoint holds no training-views generator for %d rank(s): views drawn anew from (seed, rank, "
                 "step %d)", ranks, step)
        self.views_rng.manual_seed(stream_seed(self.hparams.seed, rank, STREAMS["restarted"], step))

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer over the backbone's and head's parameters (with no_decay_1d, biases and norm weights without
        weight decay), its LR schedule stepped every optimizer step."""
        return optimizer_config(self, self.optimizer, self.lr_schedule, self.trainer.estimated_stepping_batches,
                                self.hparams.no_decay_1d)
