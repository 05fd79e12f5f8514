"""Category stimuli of a vision evaluation: a folder with one subfolder per category, or the data's test split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from toponets_exp.errors import ConfigError
from toponets_exp.evaluation.context import EvalContext
from toponets_exp.evaluation.stimulus_folder import stimulus_folder


def stimulus_loader(ctx: EvalContext) -> tuple[DataLoader, list[str], list, dict[str, str]]:
    """Category stimuli: a folder with one subfolder per category (fLoc layout), else the data's test split, capped
    at eval.max_categories categories and eval.max_per_category stimuli each.

    Returns the loader of (image, category index), the category names, each stimulus's identifier, and what each
    category is (a test split's labels are indices: the data's class names where it has them).
    """
    ev = ctx.settings
    if ev.stimuli:
        from toponets_exp.data.vision import imagenet_eval_transform

        root = Path(ev.stimuli).expanduser()
        folder = stimulus_folder(ev.stimuli)
        folder.transform = imagenet_eval_transform(ev.image_size)
        targets = np.asarray(folder.targets)
        keep = capped(targets, first_categories(len(folder.classes), ev.max_categories), ev.max_per_category)
        ids = [str(Path(folder.samples[i][0]).relative_to(root)) for i in keep]
        return (DataLoader(Subset(folder, keep), batch_size=ev.batch_size), list(folder.classes), ids,
                {c: f"folder {c}/" for c in folder.classes})
    if ctx.data is None:
        raise ConfigError(f"the task's data does not fit the model ({ctx.data_misfit}); give category stimuli with "
                          "eval.stimuli=<folder with one subfolder of images per category> or the model's data=")
    ctx.data.setup("test")
    dataset = ctx.data.test_dataloader().dataset
    targets = split_targets(dataset)
    classes = int(getattr(ctx.data.hparams, "num_classes", targets.max() + 1))
    keep = capped(targets, spread_categories(classes, ev.max_categories), ev.max_per_category)
    names = getattr(ctx.data, "class_names", None) or dataset_classes(dataset) or []
    labels = {str(c): f"class {c}" + (f" ({names[c]})" if c < len(names) else "") for c in range(classes)}
    return (DataLoader(Subset(dataset, keep), batch_size=ev.batch_size), [str(c) for c in range(classes)], keep,
            labels)


def dataset_classes(dataset: Dataset) -> list[str] | None:
    """The class names a dataset carries (torchvision's `classes`), looked up through subsets and wrappers."""
    if isinstance(dataset, Subset):
        return dataset_classes(dataset.dataset)
    if hasattr(dataset, "classes"):
        return [str(c) for c in dataset.classes]
    return dataset_classes(dataset.base) if hasattr(dataset, "base") else None


def first_categories(n: int, cap: int | None) -> list[int]:
    """Category indices 0..n-1, the first `cap` of them."""
    return list(range(n if not cap else min(n, cap)))


def spread_categories(n: int, cap: int | None) -> list[int]:
    """Category indices 0..n-1, or `cap` of them evenly spread over the range (ImageNet: across its hierarchy)."""
    if not cap or n <= cap:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, cap).round()})


def split_targets(dataset: Dataset) -> np.ndarray:
    """The label of every item of an evaluation split, read without decoding images where the dataset allows."""
    if isinstance(dataset, Subset):
        return split_targets(dataset.dataset)[np.asarray(dataset.indices)]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].cpu().numpy()
    if hasattr(dataset, "targets"):
        return np.asarray(dataset.targets)
    if hasattr(dataset, "base"):  # a transform wrapper (data.vision.Transformed)
        return split_targets(dataset.base)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))])


def capped(targets: np.ndarray, categories: Sequence[int], cap: int | None) -> list[int]:
    """Indices of the stimuli of `categories`, at most `cap` per category, in order."""
    wanted = set(int(c) for c in categories)
    keep, seen = [], {}
    for i, t in enumerate(targets.tolist()):
        if t in wanted and (not cap or seen.get(t, 0) < cap):
            keep.append(i)
            seen[t] = seen.get(t, 0) + 1
    return keep
