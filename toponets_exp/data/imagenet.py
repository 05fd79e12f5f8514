"""ImageNet (or any class-folder / HF image dataset, or class folders prepared by task=prepare) with the standard
ImageNet train and eval transforms."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

from toponets_exp.data.prepared import PreparedDataError, PreparedImages, read_meta
from toponets_exp.data.resumable import check_loader_args, eval_loader, train_loader
from toponets_exp.data.vision import (IMAGENET_MEAN, IMAGENET_STD, Transformed, check_image_size,
                                      imagenet_eval_transform, imagenet_train_transform)
from toponets_exp.checks import choice, integer
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


def check_split_folders(root: str, train_split: str, val_split: str) -> None:
    """data.root must hold the train and val split folders."""
    for split in (train_split, val_split):
        if not (Path(root).expanduser() / split).is_dir():
            raise ConfigError(f"data.root={root!r} has no {split}/ folder; data.root must hold "
                              f"{train_split}/ and {val_split}/ with one sub-folder of images per class")


def check_classes(where: str, splits: tuple[str, str], train: list[str], val: list[str]) -> None:
    """The train and val splits must have the same classes."""
    if train != val:
        raise ConfigError(f"{where}: {splits[0]}/ has {len(train)} class folders but {splits[1]}/ has {len(val)} "
                          "or different names; they must match")


def check_loader_and_crops(batch_size: Any, num_workers: Any, image_size: Any, eval_image_size: Any) -> int:
    """data.batch_size / num_workers and the train and eval crop sizes, checked; the largest crop."""
    check_loader_args(batch_size, num_workers)
    check_image_size("data.image_size", image_size)
    check_image_size("data.eval_image_size", eval_image_size or image_size)
    return max(image_size, eval_image_size or 0)


def check_prepared_options(max_side: Any, quality: Any, largest_crop: int) -> None:
    """data.prepared_max_side must be an integer >= the largest crop, data.prepared_quality one in 1-100."""
    integer("data.prepared_max_side", max_side, largest_crop, accepted=f"an integer >= {largest_crop}, the largest "
            "crop (data.image_size, data.eval_image_size): smaller stored images would be upsampled")
    integer("data.prepared_quality", quality, 1, 100, accepted="an integer JPEG quality in 1-100")


def check_prepared_split(prepared_dir: str, split: str, max_side: int, quality: int) -> None:
    """data.prepared_dir/<split> must be a finished prepared split made with data.prepared_max_side / _quality."""
    try:
        meta = read_meta(Path(prepared_dir).expanduser() / split)
    except PreparedDataError as err:
        raise ConfigError(f"data.prepared_dir={prepared_dir!r}: {err}; prepare it first: python run.py "
                          f"task=prepare data=imagenet data.root=/path/to/imagenet data.prepared_dir={prepared_dir}"
                          ) from err
    for key, value in (("max_side", max_side), ("quality", quality)):
        if meta[key] != value:
            raise ConfigError(f"data.prepared_dir={prepared_dir!r}: {split}/ was prepared with "
                              f"data.prepared_{key}={meta[key]}, this run has data.prepared_{key}={value}; set "
                              f"data.prepared_{key}={meta[key]} or prepare again into another directory")


TRAIN_CROPS = ("random", "center")


class ImageNetDataModule(L.LightningDataModule):
    """`root`/train and `root`/val class folders (or HF `hf_name` splits, or the splits of `prepared_dir` made from
    class folders by task=prepare); test evaluates the val split, as the ImageNet test labels are not public.
    Train: RandomResizedCrop + flip (`train_crop` center: as eval, for a module that makes its own views); eval:
    resize ·256/224, center crop."""

    pixel_stats = (IMAGENET_MEAN, IMAGENET_STD)  # the standardisation of [0, 1] pixels the model sees: (mean, std)

    @property
    def input_size(self) -> int:
        """The side of the square images the model is evaluated on."""
        return int(self.hparams.eval_image_size or self.hparams.image_size)

    def __init__(self, root: str | None = None, hf_name: str | None = None, hf_config: str | None = None,
                 num_classes: int = 1000, image_size: int = 224, eval_image_size: int | None = None,
                 batch_size: int = 256, num_workers: int = 8, pin_memory: bool = True, train_split: str = "train",
                 val_split: str = "val", image_column: str = "image", label_column: str = "label",
                 prepared_dir: str | None = None, prepared_max_side: int = 256, prepared_quality: int = 90,
                 train_crop: str = "random") -> None:
        super().__init__()
        choice("data.train_crop", train_crop, TRAIN_CROPS)
        largest_crop = check_loader_and_crops(batch_size, num_workers, image_size, eval_image_size)
        if prepared_dir is not None:
            check_prepared_options(prepared_max_side, prepared_quality, largest_crop)
            for split in (train_split, val_split):
                check_prepared_split(prepared_dir, split, prepared_max_side, prepared_quality)
        elif (root is None) == (hf_name is None):
            raise ConfigError("set exactly one ImageNet source: data.root=/path/to/imagenet (with train/ and val/ "
                              "class folders), data.hf_name (a datasets image dataset with image/label columns) "
                              "or data.prepared_dir (class folders converted by task=prepare)")
        elif root is not None:
            check_split_folders(root, train_split, val_split)
        self.save_hyperparameters()
        self.splits: dict[str, Dataset] = {}

    def _folders(self) -> tuple[Dataset, Dataset, list[str]]:
        """(train, val) ImageFolders; both must have the same classes."""
        hp = self.hparams
        root = Path(hp.root).expanduser()
        train, val = ImageFolder(str(root / hp.train_split)), ImageFolder(str(root / hp.val_split))
        check_classes(f"data.root={hp.root!r}", (hp.train_split, hp.val_split), train.classes, val.classes)
        return train, val, train.classes

    def _prepared(self) -> tuple[Dataset, Dataset, list[str]]:
        """(train, val) prepared splits; both must have the same classes."""
        hp = self.hparams
        prepared = Path(hp.prepared_dir).expanduser()
        train, val = PreparedImages(prepared / hp.train_split), PreparedImages(prepared / hp.val_split)
        check_classes(f"data.prepared_dir={hp.prepared_dir!r}", (hp.train_split, hp.val_split), train.classes,
                      val.classes)
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
        if hp.prepared_dir is not None or hp.root is not None:
            train, val, classes = self._prepared() if hp.prepared_dir is not None else self._folders()
            n_classes = len(classes)
        else:
            train, val, n_classes = self._hf()
        if n_classes != hp.num_classes:
            raise ConfigError(f"data.num_classes={hp.num_classes} but the data has {n_classes} classes")
        train_transform = imagenet_train_transform if hp.train_crop == "random" else imagenet_eval_transform
        self.splits = {"train": Transformed(train, train_transform(hp.image_size)),
                       "val": Transformed(val, imagenet_eval_transform(hp.eval_image_size or hp.image_size))}
        log.info("images: %d train, %d val, %d classes", len(train), len(val), n_classes)

    def train_dataloader(self) -> DataLoader:
        """Training batches."""
        hp = self.hparams
        return train_loader(self, self.splits["train"], hp.batch_size, hp.num_workers, hp.pin_memory, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches."""
        hp = self.hparams
        return eval_loader(self, self.splits["val"], hp.batch_size, hp.num_workers, hp.pin_memory)

    def test_dataloader(self) -> DataLoader:
        """Test batches."""
        return self.val_dataloader()
