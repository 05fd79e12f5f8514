"""W&B images of each topo layer's weight sheet during training (its first three weight PCs as RGB)."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from toponets_exp.topo.layer import TopoLayer
from toponets_exp.topo.sheet import unit_matrix
from toponets_exp.topo.sheet_pca import sheet_principal_components, sheet_rgb


def sheet_image(vectors: np.ndarray, sheet: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 picture: unit i's scores on the first 3 PCs of the unit-norm weight vectors, as RGB whose
    saturation follows each PC's share of the variance (sheet_rgb)."""
    scores, shares = sheet_principal_components(vectors, sheet, k=3)
    return (sheet_rgb(scores, shares) * 255).round().astype(np.uint8)


class TopoSheetImages(Callback):
    """Every `every_n_val` validations, logs `sheets/<layer>` images to the W&B loggers (rank 0 only)."""

    def __init__(self, layers: list[TopoLayer], every_n_val: int = 1) -> None:
        super().__init__()
        self.layers, self.every_n_val = layers, int(every_n_val)
        self._validations = 0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.every_n_val < 1 or not self.layers:
            return
        self._validations += 1
        if self._validations % self.every_n_val or not trainer.is_global_zero:
            return
        images: dict[str, Any] = {}
        for layer in self.layers:
            vectors = layer.on_sheet(unit_matrix(layer.param.detach().float().cpu(), layer.unit_dim)).numpy()
            images[layer.name] = sheet_image(vectors, layer.sheet)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, image in images.items():
                    logger.log_image(key=f"sheets/{name}", images=[image], step=trainer.global_step,
                                     caption=[f"{name} step {trainer.global_step}: weight PCs 1-3 as RGB, "
                                              "saturation ∝ variance explained"])
