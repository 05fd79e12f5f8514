"""Vision evaluation: responses to category stimuli → ED, selectivity maps, map similarity; accuracy efficiency."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from toponets_exp.brain import map_pearson, map_ssim, plot_selectivity_maps, ridge_predictivity, selectivity_map
from toponets_exp.brain.activations import evaluating, record_activations
from toponets_exp.data.resumable import whole_split
from toponets_exp.errors import ConfigError
from toponets_exp.tasks.eval_common import (STD_DDOF, EvalContext, check_layers, efficiency, file_name,
                                           map_patches, map_tdann_smoothness, phase, response_maps,
                                           warn_unresolved)
from toponets_exp.tasks.eval_gratings import orientation_analysis


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


def stimulus_loader(ctx: EvalContext) -> tuple[DataLoader, list[str], list, dict[str, str]]:
    """Category stimuli: a folder with one subfolder per category (fLoc layout), else the data's test split, capped
    at eval.max_categories categories and eval.max_per_category stimuli each.

    Returns the loader of (image, category index), the category names, each stimulus's identifier, and what each
    category is (a test split's labels are indices: the data's class names where it has them).
    """
    ev = ctx.ev
    if ev["stimuli"]:
        from toponets_exp.data.vision import imagenet_eval_transform

        root = Path(ev["stimuli"]).expanduser()
        folder = stimulus_folder(ev["stimuli"])
        folder.transform = imagenet_eval_transform(ev["image_size"])
        targets = np.asarray(folder.targets)
        keep = capped(targets, first_categories(len(folder.classes), ev["max_categories"]), ev["max_per_category"])
        ids = [str(Path(folder.samples[i][0]).relative_to(root)) for i in keep]
        return (DataLoader(Subset(folder, keep), batch_size=ev["batch_size"]), list(folder.classes), ids,
                {c: f"folder {c}/" for c in folder.classes})
    if ctx.data is None:
        raise ConfigError(f"the task's data does not fit the model ({ctx.data_misfit}); give category stimuli with "
                          "eval.stimuli=<folder with one subfolder of images per category> or the model's data=")
    ctx.data.setup("test")
    dataset = ctx.data.test_dataloader().dataset
    targets = split_targets(dataset)
    classes = int(getattr(ctx.data.hparams, "num_classes", targets.max() + 1))
    keep = capped(targets, spread_categories(classes, ev["max_categories"]), ev["max_per_category"])
    names = getattr(ctx.data, "class_names", None) or dataset_classes(dataset) or []
    labels = {str(c): f"class {c}" + (f" ({names[c]})" if c < len(names) else "") for c in range(classes)}
    return (DataLoader(Subset(dataset, keep), batch_size=ev["batch_size"]), [str(c) for c in range(classes)], keep,
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


def record_with_labels(net: nn.Module, names: Sequence[str], loader: DataLoader,
                       device: torch.device) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Layer responses (stimuli × units) and the category label of each stimulus."""
    labels: list[np.ndarray] = []

    def images() -> Iterator[torch.Tensor]:
        for x, y in loader:
            labels.append(np.asarray(y))
            yield x

    acts = record_activations(net, names, images(), reduce="mean", device=device)
    return acts, np.concatenate(labels)


def accuracy_on(loader: DataLoader, max_batches: int | None, device: torch.device) -> Any:
    """A function net -> top-1 accuracy on the first `max_batches` batches of `loader`."""

    def evaluate(net: nn.Module) -> float:
        correct = total = 0
        net.to(device)
        with evaluating(net):
            for i, (x, y) in enumerate(loader):
                if max_batches is not None and i >= max_batches:
                    break
                correct += (net(x.to(device)).argmax(-1).cpu() == y).sum().item()
                total += len(y)
        return correct / total

    return evaluate


def selectivity(ctx: EvalContext, acts: Mapping[str, np.ndarray], labels: np.ndarray, categories: Sequence[str],
                report: dict, meaning: Mapping[str, str], stimuli: str) -> None:
    """Per layer and category: t / d′ maps, fraction selective, Moran's I, TDANN smoothness and TDANN's patches of
    the t map; SSIM and Pearson between the category maps."""
    ev = ctx.ev
    named = np.asarray(categories)[labels]
    present = [c for c in categories if np.any(named == c)]
    leading_bins = {}
    for layer in ctx.layers:
        maps = [selectivity_map(acts[layer.name], named, c, layer.sheet, ev["selectivity_threshold"],
                                ddof=STD_DDOF[ev["selectivity_std"]]) for c in present]
        names = [m.category for m in maps]
        tdann = [map_tdann_smoothness(m.t, layer.sheet, ev) for m in maps]
        leading_bins[layer.name] = [bins for _, bins in tdann]
        report[layer.name]["selectivity"] = {
            m.category: {"fraction_selective": m.fraction_selective, "morans_i": m.morans_i,
                         "morans_i_topolm": m.morans_i_topolm,
                         "tdann_smoothness": value, "tdann_bins": bins, "peak_t": float(np.max(m.t)),
                         **map_patches(m.t, layer.sheet)}
            for m, (value, bins) in zip(maps, tdann)}
        report[layer.name]["map_similarity"] = {
            "categories": names,
            "pearson": [[map_pearson(a.t, b.t) for b in maps] for a in maps],
            "ssim": [[map_ssim(a.t, b.t) for b in maps] for a in maps]}
        plot_selectivity_maps(maps, ctx.figures / f"selectivity_{file_name(layer.name)}.png",
                              f"{layer.name}: category selectivity (t, one category vs the rest)", stimuli, meaning)
    warn_unresolved(ctx.layers, leading_bins, ev)


def predictivity(acts: Mapping[str, np.ndarray], ids: Sequence[Any], ev: Mapping[str, Any]) -> dict[str, Any]:
    """Cross-validated ridge from each layer's responses to user data (.npz: responses, stimuli)."""
    path = Path(ev["neural_data"]).expanduser()
    if not path.is_file():
        raise ConfigError(f"eval.neural_data={str(path)!r} is not a file (.npz with 'responses' and 'stimuli')")
    data = np.load(path, allow_pickle=False)
    missing = {"responses", "stimuli"} - set(data.files)
    if missing:
        raise ConfigError(f"eval.neural_data {path.name} lacks {sorted(missing)}; it needs 'responses' "
                          "(stimuli × targets) and 'stimuli' (paths relative to eval.stimuli)")
    index = {str(s): i for i, s in enumerate(ids)}
    unknown = [str(s) for s in data["stimuli"] if str(s) not in index]
    if unknown:
        raise ConfigError(f"eval.neural_data names stimuli not in eval.stimuli, e.g. {unknown[:3]}")
    rows = [index[str(s)] for s in data["stimuli"]]
    layers = ev["predictivity_layers"] or list(acts)
    unrecorded = [name for name in layers if name not in acts]
    if unrecorded:
        raise ConfigError(f"eval.predictivity_layers names {unrecorded[0]!r}, which is not recorded; use topo layers "
                          f"or add it to eval.layers (recorded: {', '.join(acts)})")
    return {name: ridge_predictivity(acts[name][rows], data["responses"], n_splits=ev["cv_folds"],
                                     seed=ev["seed"]) for name in layers}


def vision_analyses(ctx: EvalContext, report: dict) -> dict[str, Any]:
    """Run every vision analysis; fills `report` per layer and returns the model-level results."""
    ev = ctx.ev
    loader, categories, ids, meaning = stimulus_loader(ctx)
    names = [layer.name for layer in ctx.layers] + [n for n in ev["layers"] if n not in report]
    check_layers(ctx.net, ev["layers"] + ev["predictivity_layers"])
    phase("recording %d layers' responses to the stimuli (%s)", len(names), ev["stimuli"] or "data test split")
    acts, labels = record_with_labels(ctx.net, names, loader, ctx.device)
    features = None
    if ev["ed_features"] == "unpooled":  # TDANN's convention: ED of every C·H·W value, one more pass
        features = record_activations(ctx.net, [l.name for l in ctx.layers], (x for x, _ in loader),
                                      reduce="flatten", device=ctx.device)
    phase("smoothness and effective dimensionality of %d topo layers", len(ctx.layers))
    response_maps(ctx.layers, acts, ev, report, ctx.figures, features)
    present = sorted({categories[i] for i in labels.tolist()}, key=categories.index)
    source = ev["stimuli"] or f"the test split of {type(ctx.data).__name__}"
    stimuli = f"{source}, {len(labels)} images of {len(present)} categories"
    phase("category selectivity maps of %d topo layers", len(ctx.layers))
    selectivity(ctx, acts, labels, categories, report, meaning, stimuli)
    out: dict[str, Any] = {"stimuli": ev["stimuli"] or "data test split", "n_stimuli": int(len(labels)),
                           "categories": present, "category_meaning": {c: meaning[c] for c in present}}
    if ev["gratings"]:
        out["gratings"] = orientation_analysis(ctx, report)
    if ev["efficiency"]:
        if ctx.data is None:
            ctx.skip("efficiency", "the task's test split for accuracy")
        else:
            ctx.data.setup("test")
            evaluate = accuracy_on(whole_split(ctx.data.test_dataloader()), ev["metric_batches"], ctx.device)
            n_classes = getattr(ctx.data.hparams, "num_classes", None)
            chance = (1.0 / n_classes, f"1/{n_classes} classes") if n_classes else None
            out["efficiency"] = efficiency(ctx.net, ctx.layers, ev, ctx.model["downsample"], "accuracy", evaluate,
                                           ctx.figures, chance)
    if ev["neural_data"]:
        out["predictivity"] = predictivity(acts, ids, ev)
    return out
