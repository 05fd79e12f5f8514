"""ImageNet (or any class-folder / HF image dataset) with the standard ImageNet train and eval transforms."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

from toponets_exp.data.resumable import check_loader_args, eval_loader, train_loader
from toponets_exp.data.vision import (Transformed, check_image_size, imagenet_eval_transform,
                                      imagenet_train_transform)
from toponets_exp.errors import ConfigError

log = logging.getLogger(__name__)


class HFImages(Dataset):
    """(PIL image, label) items of a `datasets` split with an image column and an integer label column."""

    def __init__(self, dataset: Any, image_column: str, label_column: str) -> None:
        for column in (image_column, label_column):
            if column not in dataset.column_names:
                raise ConfigError(f"data column {column!r} is not in the dataset; columns: "
                                  f"{', '.join(dataset.column_names)} (set data.image_column / data.label_column)")
        self.dataset, self.image_column, self.label_column = dataset, image_column, label_column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        row = self.dataset[i]
        return row[self.image_column], int(row[self.label_column])

    def num_classes(self) -> int:
        """Classes of the label column: its ClassLabel size, else the largest label + 1."""
        feature = self.dataset.features[self.label_column]
        names = getattr(feature, "names", None)
        return len(names) if names else int(max(self.dataset[self.label_column])) + 1


class ImageNetDataModule(L.LightningDataModule):
    """`root`/train and `root`/val class folders (or HF `hf_name` splits); test evaluates the val split, as the
    ImageNet test labels are not public. Train: RandomResizedCrop + flip; eval: resize ·256/224, center crop."""

    def __init__(self, root: str | None = None, hf_name: str | None = None, hf_config: str | None = None,
                 num_classes: int = 1000, image_size: int = 224, eval_image_size: int | None = None,
                 batch_size: int = 256, num_workers: int = 8, pin_memory: bool = True, train_split: str = "train",
                 val_split: str = "val", image_column: str = "image", label_column: str = "label") -> None:
        super().__init__()
        check_loader_args(batch_size, num_workers)
        if (root is None) == (hf_name is None):
            raise ConfigError("set exactly one ImageNet source: data.root=/path/to/imagenet (with train/ and val/ "
                              "class folders) or data.hf_name (a datasets image dataset with image/label columns)")
        check_image_size("data.image_size", image_size)
        check_image_size("data.eval_image_size", eval_image_size or image_size)
        if root is not None:
            for split in (train_split, val_split):
                if not (Path(root).expanduser() / split).is_dir():
                    raise ConfigError(f"data.root={root!r} has no {split}/ folder; data.root must hold "
                                      f"{train_split}/ and {val_split}/ with one sub-folder of images per class")
        self.save_hyperparameters()
        self.splits: dict[str, Dataset] = {}

    def _folders(self) -> tuple[Dataset, Dataset, list[str]]:
        """(train, val) ImageFolders; both must have the same classes."""
        hp = self.hparams
        root = Path(hp.root).expanduser()
        train, val = ImageFolder(str(root / hp.train_split)), ImageFolder(str(root / hp.val_split))
        if train.classes != val.classes:
            raise ConfigError(f"data.root={hp.root!r}: {hp.train_split}/ has {len(train.classes)} class folders but "
                              f"{hp.val_split}/ has {len(val.classes)} or different names; they must match")
        return train, val, train.classes

    def _hf(self) -> tuple[Dataset, Dataset, int]:
        """(train, val) splits of the HF image dataset."""
        import datasets

        hp = self.hparams
        try:
            loaded = {s: datasets.load_dataset(hp.hf_name, hp.hf_config, split=s) for s in (hp.train_split,
                                                                                            hp.val_split)}
        except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
            raise ConfigError(f"data.hf_name={hp.hf_name!r} could not be loaded ({err}); without network use a "
                              "local dataset directory or data.root with class folders") from err
        except ValueError as err:
            raise ConfigError(f"data.hf_name={hp.hf_name!r}: {err} (set data.train_split / data.val_split)") from err
        train, val = (HFImages(loaded[s], hp.image_column, hp.label_column) for s in (hp.train_split, hp.val_split))
        return train, val, train.num_classes()

    def setup(self, stage: str | None = None) -> None:
        """Build the splits once (idempotent)."""
        if self.splits:
            return
        hp = self.hparams
        if hp.root is not None:
            train, val, classes = self._folders()
            n_classes = len(classes)
        else:
            train, val, n_classes = self._hf()
        if n_classes != hp.num_classes:
            raise ConfigError(f"data.num_classes={hp.num_classes} but the data has {n_classes} classes")
        self.splits = {"train": Transformed(train, imagenet_train_transform(hp.image_size)),
                       "val": Transformed(val, imagenet_eval_transform(hp.eval_image_size or hp.image_size))}
        log.info("images: %d train, %d val, %d classes", len(train), len(val), n_classes)

    def train_dataloader(self) -> DataLoader:
        """Training batches."""
        hp = self.hparams
        return train_loader(self, self.splits["train"], hp.batch_size, hp.num_workers, hp.pin_memory, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        hp = self.hparams
        return eval_loader(self.splits["val"], hp.batch_size, hp.num_workers, hp.pin_memory)

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self.val_dataloader()
