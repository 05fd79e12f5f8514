"""The category folder of eval.stimuli (one subfolder of images per category): read, and checked whole before an
evaluation builds anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toponets_exp.errors import ConfigError


def stimulus_folder(stimuli: str) -> Any:
    """The ImageFolder of eval.stimuli: one subfolder of images per category, at least 2 categories."""
    from torchvision.datasets import ImageFolder

    root = Path(stimuli).expanduser()
    key = f"eval.stimuli={str(root)!r}"
    if not root.is_dir():
        raise ConfigError(f"{key} is not a folder with one subfolder of images per category")
    try:
        folder = ImageFolder(str(root))
    except FileNotFoundError as err:  # torchvision: no class folder, or no image in any of them
        raise ConfigError(f"{key}: {err} (expected one subfolder of images per category)") from None
    if len(folder.classes) < 2:
        raise ConfigError(f"{key} has {len(folder.classes)} category folder(s) ({', '.join(folder.classes)}); "
                          "category selectivity needs at least 2")
    return folder


def check_stimuli(stimuli: str) -> None:
    """eval.stimuli checked whole before an evaluation writes anything: its folders and every image readable."""
    from PIL import Image

    key = f"eval.stimuli={str(Path(stimuli).expanduser())!r}"
    for path, _ in stimulus_folder(stimuli).samples:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as err:  # noqa: BLE001 - PIL raises several types for a file it cannot read
            raise ConfigError(f"{key}: cannot read image {path!r} ({type(err).__name__}: {err})") from None
