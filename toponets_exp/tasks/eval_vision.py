"""Vision evaluation: responses to category stimuli → ED, selectivity maps, map similarity; accuracy efficiency."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from toponets_exp.brain import map_pearson, map_ssim, plot_selectivity_maps, ridge_predictivity, selectivity_map
from toponets_exp.brain.activations import evaluating, record_activations
from toponets_exp.errors import ConfigError
from toponets_exp.tasks.eval_common import efficiency, file_name, response_maps
from toponets_exp.topo import TopoLayer


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


def stimulus_loader(ev: Mapping[str, Any], datamodule: L.LightningDataModule) -> tuple[DataLoader, list[str], list]:
    """Category stimuli: a folder with one subfolder per category (fLoc layout), else the data's test split.

    Returns the loader of (image, category index), the category names, and each stimulus's identifier.
    """
    if ev["stimuli"]:
        from toponets_exp.data.vision import imagenet_eval_transform

        root = Path(ev["stimuli"]).expanduser()
        folder = stimulus_folder(ev["stimuli"])
        folder.transform = imagenet_eval_transform(ev["image_size"])
        keep = _capped(np.asarray(folder.targets), ev["max_per_category"])
        ids = [str(Path(folder.samples[i][0]).relative_to(root)) for i in keep]
        return DataLoader(Subset(folder, keep), batch_size=ev["batch_size"]), list(folder.classes), ids
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    n = len(loader.dataset)
    return loader, [str(c) for c in range(getattr(datamodule.hparams, "num_classes", 0))], list(range(n))


def _capped(targets: np.ndarray, cap: int | None) -> list[int]:
    """Indices keeping at most `cap` stimuli per category, in order."""
    if not cap:
        return list(range(len(targets)))
    keep, seen = [], {}
    for i, t in enumerate(targets):
        if seen.get(t, 0) < cap:
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


def selectivity(layers: Sequence[TopoLayer], acts: Mapping[str, np.ndarray], labels: np.ndarray,
                categories: Sequence[str], ev: Mapping[str, Any], report: dict, figures: Path) -> None:
    """Per layer and category: t / d′ maps, fraction selective, Moran's I; SSIM and Pearson between category maps."""
    named = np.asarray(categories)[labels]
    present = [c for c in categories if np.any(named == c)]
    for layer in layers:
        maps = [selectivity_map(acts[layer.name], named, c, layer.sheet, ev["selectivity_threshold"])
                for c in present]
        names = [m.category for m in maps]
        report[layer.name]["selectivity"] = {
            m.category: {"fraction_selective": m.fraction_selective, "morans_i": m.morans_i,
                         "peak_t": float(np.max(m.t))} for m in maps}
        report[layer.name]["map_similarity"] = {
            "categories": names,
            "pearson": [[map_pearson(a.t, b.t) for b in maps] for a in maps],
            "ssim": [[map_ssim(a.t, b.t) for b in maps] for a in maps]}
        plot_selectivity_maps(maps, figures / f"selectivity_{file_name(layer.name)}.png",
                              f"{layer.name}: category selectivity (Welch t, one vs rest)")


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
    return {name: ridge_predictivity(acts[name][rows], data["responses"], n_splits=ev["cv_folds"],
                                     seed=ev["seed"]) for name in layers}


def vision_analyses(net: nn.Module, layers: Sequence[TopoLayer], datamodule: L.LightningDataModule,
                    ev: Mapping[str, Any], report: dict, figures: Path, device: torch.device) -> dict[str, Any]:
    """Run every vision analysis; fills `report` per layer and returns the model-level results."""
    loader, categories, ids = stimulus_loader(ev, datamodule)
    names = [layer.name for layer in layers] + [n for n in ev["layers"] or [] if n not in report]
    acts, labels = record_with_labels(net, names, loader, device)
    response_maps(layers, acts, ev, report, figures)
    selectivity(layers, acts, labels, categories, ev, report, figures)
    out: dict[str, Any] = {"stimuli": ev["stimuli"] or "data test split", "n_stimuli": int(len(labels)),
                           "categories": categories}
    if ev["efficiency"]:
        datamodule.setup("test")
        evaluate = accuracy_on(datamodule.test_dataloader(), ev["metric_batches"], device)
        out["efficiency"] = efficiency(net, layers, ev, "accuracy", evaluate, figures)
    if ev["neural_data"]:
        out["predictivity"] = predictivity(acts, ids, ev)
    return out
