"""CIFAR-10 from a local torchvision layout (`root`/cifar-10-batches-py), seeded train/val split."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.datasets import CIFAR10
from torchvision.transforms import v2

from toponets_exp.checks import integer
from toponets_exp.data.resumable import check_loader_args, eval_loader, train_loader
from toponets_exp.data.vision import Transformed, to_normalized_tensor
from toponets_exp.errors import ConfigError

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class CIFAR10DataModule(L.LightningDataModule):
    """CIFAR-10 32x32: `val_size` training images held out (seeded) for validation, the official test set for test;
    training augmentation is a 4-pixel-padded random crop and a horizontal flip."""

    n_classes = 10
    pixel_stats = (CIFAR_MEAN, CIFAR_STD)  # the standardisation of [0, 1] pixels the model sees: (mean, std)
    input_size = 32                       # the side of the square images the model is trained on

    def __init__(self, root: str | None, download: bool = False, num_classes: int = 10, val_size: int = 5000,
                 split_seed: int = 0, batch_size: int = 128, num_workers: int = 4, pin_memory: bool = False) -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        if num_classes != self.n_classes:
            raise ConfigError(f"data.num_classes={num_classes} but CIFAR-10 has {self.n_classes} classes")
        if not root:
            raise ConfigError("data.root is not set: point it at the folder holding cifar-10-batches-py/ "
                              "(or add data.download=true to fetch it there)")
        if not download and not (Path(root).expanduser() / CIFAR10.base_folder).is_dir():
            raise ConfigError(f"data.root={root!r} has no {CIFAR10.base_folder}/; point data.root at the folder "
                              "that holds it, or add data.download=true to fetch CIFAR-10 there")
        integer("data.val_size", val_size, 1, accepted="an integer >= 1 (training images held out for validation)")
        integer("data.split_seed", split_seed, 0, 2**63 - 1)
        self.save_hyperparameters()
        self.splits: dict[str, Dataset] = {}

    def prepare_data(self) -> None:
        """Download CIFAR-10 into `root` (rank 0 only) when `download` is set."""
        if self.hparams.download:
            CIFAR10(str(Path(self.hparams.root).expanduser()), train=True, download=True)

    def setup(self, stage: str | None = None) -> None:
        """Build the splits once (idempotent)."""
        if self.splits:
            return
        hp = self.hparams
        root = str(Path(hp.root).expanduser())
        try:
            train, test = CIFAR10(root, train=True), CIFAR10(root, train=False)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise ConfigError(f"data.root={hp.root!r}: {err} (add data.download=true to fetch it)") from err
        if hp.val_size >= len(train):
            raise ConfigError(f"data.val_size={hp.val_size} must be below the {len(train)} training images")
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(hp.split_seed)).tolist()
        augment = v2.Compose([v2.ToImage(), v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                              *to_normalized_tensor(CIFAR_MEAN, CIFAR_STD)])
        plain = v2.Compose(to_normalized_tensor(CIFAR_MEAN, CIFAR_STD))
        self.splits = {"train": Transformed(Subset(train, order[hp.val_size:]), augment),
                       "val": Transformed(Subset(train, order[:hp.val_size]), plain),
                       "test": Transformed(test, plain)}

    def train_dataloader(self) -> DataLoader:
        """Training batches."""
        hp = self.hparams
        return train_loader(self, self.splits["train"], hp.batch_size, hp.num_workers, hp.pin_memory)

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        hp = self.hparams
        return eval_loader(self, self.splits["val"], hp.batch_size, hp.num_workers, hp.pin_memory)

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        hp = self.hparams
        return eval_loader(self, self.splits["test"], hp.batch_size, hp.num_workers, hp.pin_memory)
