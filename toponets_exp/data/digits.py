"""Embedded default data: scikit-learn's bundled 8x8 handwritten digits (1 797 images, 10 classes)."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.transforms import v2

from toponets_exp.checks import integer
from toponets_exp.data.resumable import check_loader_args, eval_loader, train_loader
from toponets_exp.data.vision import Transformed
from toponets_exp.errors import ConfigError


class DigitsDataModule(L.LightningDataModule):
    """Digits upsampled to `image_size`, 3 channels, standardised; fixed seeded stratified train/val/test split."""

    n_digit_classes = 10
    class_names = tuple(f"digit {i}" for i in range(n_digit_classes))  # what each label means, for figures
    pixel_stats = ((0.3,) * 3, (0.4,) * 3)  # the standardisation of [0, 1] pixels the model sees: (mean, std)

    @property
    def input_size(self) -> int:
        """The side of the square images the model is trained on."""
        return int(self.hparams.image_size)

    def __init__(self, num_classes: int = 10, image_size: int = 16, batch_size: int = 64, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, split_seed: int = 0, augment_shift: int = 1, num_workers: int = 0,
                 pin_memory: bool = False) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        if num_classes != self.n_digit_classes:
            raise ConfigError(f"data.num_classes={num_classes} but the digits have {self.n_digit_classes} classes")
        integer("data.image_size", image_size, 8, 224, accepted="an integer between 8 and 224")
        integer("data.augment_shift", augment_shift, 0, image_size - 1, accepted=f"an integer from 0 to "
                f"data.image_size - 1 = {image_size - 1} (pixels of random translation)")
        integer("data.split_seed", split_seed, 0, 2**32 - 1)
        if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError("data.val_fraction and data.test_fraction must be in (0, 1) and sum below 1")
        self.save_hyperparameters()
        self.splits: dict[str, TensorDataset] = {}

    def _tensors(self, images: np.ndarray, labels: np.ndarray) -> TensorDataset:
        """8x8 images in [0, 16] → (N, 3, S, S) float tensors, standardised with the digits' global stats."""
        x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
        x = F.interpolate(x, size=self.hparams.image_size, mode="bilinear", align_corners=False)
        x = ((x - 0.3) / 0.4).expand(-1, 3, -1, -1).contiguous()
        return TensorDataset(x, torch.tensor(labels, dtype=torch.long))

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        digits = load_digits()
        hp = self.hparams
        idx = np.arange(len(digits.target))
        rest, test = train_test_split(idx, test_size=hp.test_fraction, random_state=hp.split_seed,
                                      stratify=digits.target)
        train, val = train_test_split(rest, test_size=hp.val_fraction / (1 - hp.test_fraction),
                                      random_state=hp.split_seed, stratify=digits.target[rest])
        for name, ids in (("train", train), ("val", val), ("test", test)):
            self.splits[name] = self._tensors(digits.images[ids], digits.target[ids])

    def _loader(self, dataset: Dataset) -> DataLoader:
        hp = self.hparams
        return eval_loader(self, dataset, hp.batch_size, hp.num_workers, hp.pin_memory)

    def train_dataset(self) -> Dataset:
        """The training split, each item translated by up to `augment_shift` pixels (zero padding, torch's RNG)."""
        hp = self.hparams
        if not hp.augment_shift:
            return self.splits["train"]
        return Transformed(self.splits["train"], v2.RandomCrop(hp.image_size, padding=hp.augment_shift))

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return train_loader(self, self.train_dataset(), hp.batch_size, hp.num_workers, hp.pin_memory)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["val"])

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"])
