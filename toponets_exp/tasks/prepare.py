"""task=prepare: convert data.root's class folders once into data.prepared_dir, which data=imagenet then reads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from toponets_exp.data.imagenet import (check_classes, check_loader_and_crops, check_prepared_options,
                                        check_split_folders)
from toponets_exp.data.prepared import PreparedDataError, class_folder, prepare_split
from toponets_exp.errors import ConfigError

log = logging.getLogger(__name__)


def _check(data: DictConfig) -> None:
    """The data keys task=prepare reads: data.root with both split folders, data.prepared_dir outside them."""
    if "prepared_dir" not in data:
        raise ConfigError("task=prepare converts ImageNet-style class folders: use data=imagenet with "
                          "data.root=/path/to/imagenet data.prepared_dir=/path/to/prepared")
    if data.root is None:
        raise ConfigError("data.root is not set: task=prepare converts the class folders of data.root/"
                          f"{data.train_split}/ and data.root/{data.val_split}/; set data.root=/path/to/imagenet")
    if data.prepared_dir is None:
        raise ConfigError("data.prepared_dir is not set: task=prepare writes the prepared splits there; set "
                          "data.prepared_dir=/path/to/prepared")
    largest_crop = check_loader_and_crops(data.batch_size, data.num_workers, data.image_size, data.eval_image_size)
    check_prepared_options(data.prepared_max_side, data.prepared_quality, largest_crop)
    check_split_folders(data.root, data.train_split, data.val_split)
    out = Path(data.prepared_dir).expanduser().resolve()
    for split in (data.train_split, data.val_split):
        source = Path(data.root).expanduser().resolve() / split
        if out.is_relative_to(source):
            raise ConfigError(f"data.prepared_dir={data.prepared_dir!r} is inside the source folder {source}; "
                              "choose a directory outside data.root's split folders")


def prepare(cfg: DictConfig) -> dict[str, Any]:
    """Prepare data.train_split and data.val_split; a finished split is kept, an unfinished one resumed."""
    data = cfg.data
    _check(data)
    splits = (data.train_split, data.val_split)
    folders = {}
    for split in splits:
        try:
            folders[split] = class_folder(Path(data.root).expanduser() / split)
        except PreparedDataError as err:
            raise ConfigError(f"data.root={data.root!r}: {err}") from err
    check_classes(f"data.root={data.root!r}", splits, folders[splits[0]].classes, folders[splits[1]].classes)
    summary = {}
    for split, folder in folders.items():
        dest = Path(data.prepared_dir).expanduser() / split
        try:
            written = prepare_split(folder, dest, data.prepared_max_side, data.prepared_quality, data.num_workers)
        except PreparedDataError as err:
            raise ConfigError(f"data.prepared_dir={data.prepared_dir!r}: {err}") from err
        status = "prepared" if written else "already prepared, kept"
        log.info("%s: %d images of %d classes, %s (%s)", split, len(folder), len(folder.classes), status, dest)
        summary[split] = {"path": str(dest), "images": len(folder), "status": status}
    log.info("train and evaluate from it with data.prepared_dir=%s", data.prepared_dir)
    return summary
