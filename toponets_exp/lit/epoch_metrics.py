"""Training-epoch aggregates in checkpoints: every DDP rank's own, so each rank resumes its share exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_sum

PER_RANK = "epoch_metric_states_per_rank"  # checkpoint key: {state_dict key: tensor (ranks, ...)}


def persistent_states(module: L.LightningModule) -> Iterator[tuple[Metric, str, str]]:
    """(metric, state name, state_dict key) of every metric state the module saves in its checkpoints."""
    for prefix, metric in module.named_modules():
        if isinstance(metric, Metric):
            for state, persistent in metric._persistent.items():
                if persistent:
                    yield metric, state, f"{prefix}.{state}"


class ResumableEpochMetrics(L.LightningModule):
    """A module whose persistent metrics (training-epoch aggregates) resume mid-epoch exactly under DDP too.

    Each rank accumulates its own batches, and the checkpoint is written by rank 0: its state_dict holds rank 0's
    states, and `epoch_metric_states_per_rank` every rank's, from which each rank takes its own on resume. (A sum
    over the ranks, continued by rank 0, would give the same aggregate up to float rounding; this gives it exactly.)
    """

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Every rank's persistent states (every rank saves, so the gathers line up)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return
        checkpoint[PER_RANK] = {key: self.all_gather(getattr(metric, state)).detach().cpu()
                                for metric, state, key in persistent_states(self)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """This rank's own persistent states; from a checkpoint of another rank count, a summed state goes to rank 0
        whole (the other ranks start it from zero)."""
        per_rank = checkpoint.get(PER_RANK)
        if per_rank is None:
            return
        rank, ranks = (self.trainer.global_rank, self.trainer.world_size) if self._trainer is not None else (0, 1)
        for metric, state, key in persistent_states(self):
            saved = per_rank.get(key)
            if saved is None:
                continue
            if len(saved) == ranks:
                checkpoint["state_dict"][key] = saved[rank].clone()
            elif metric._reductions[state] is dim_zero_sum:
                checkpoint["state_dict"][key] = saved.sum(0) if rank == 0 else torch.zeros_like(saved[0])
