"""Vision evaluation: responses to category stimuli → ED, selectivity maps, map similarity; accuracy efficiency."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from toponets_exp.brain import (SelectivityMap, map_pearson, map_ssim, plot_selectivity_maps, ridge_predictivity,
                                selectivity_map)
from toponets_exp.brain.sheet_plots import shared_t_limit
from toponets_exp.data.resumable import whole_split
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation.context import (EvalContext, Section, file_name, merge_layers, on_sheets, phase,
                                             stop_point)
from toponets_exp.evaluation.efficiency_analyses import efficiency
from toponets_exp.evaluation.gratings_analyses import orientation_analysis
from toponets_exp.evaluation.maps import map_patches, map_tdann_smoothness, response_maps, unresolved_note
from toponets_exp.evaluation.readout import readout
from toponets_exp.evaluation.recording import evaluating, record_activations
from toponets_exp.evaluation.settings import EvalSettings
from toponets_exp.evaluation.stimuli import stimulus_loader

STD_DDOF = {"sample": 1, "population": 0}  # eval.selectivity_std -> the ddof of t and d′


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
                stop_point()
                correct += (net(x.to(device)).argmax(-1).cpu() == y).sum().item()
                total += len(y)
        return correct / total

    return evaluate


def selectivity(ctx: EvalContext, acts: Mapping[str, np.ndarray], labels: np.ndarray, categories: Sequence[str],
                meaning: Mapping[str, str], stimuli: str) -> Section:
    """Per layer and category: t / d′ maps, fraction selective, Moran's I, TDANN smoothness and TDANN's patches of
    the t map; SSIM (null on a sheet under 3×3, e.g. a 10-way head's 2×5) and Pearson between the category maps.
    Every layer's figure shares one colour range, the largest |t| of all layers."""
    ev = ctx.settings
    named = np.asarray(categories)[labels]
    present = [c for c in categories if np.any(named == c)]
    maps = {layer.name: [selectivity_map(acts[layer.name], named, c, layer.sheet, ev.selectivity_threshold,
                                         ddof=STD_DDOF[ev.selectivity_std]) for c in present]
            for layer in ctx.layers}
    leading_bins, out = {}, {}
    for layer in ctx.layers:
        stop_point()
        out[layer.name], leading_bins[layer.name] = _layer_selectivity(maps[layer.name], layer.sheet, ev)
    ctx.note(unresolved_note(ctx.layers, leading_bins, ev))
    lim = shared_t_limit(m for layer_maps in maps.values() for m in layer_maps)
    for name, layer_maps in maps.items():
        plot_selectivity_maps(layer_maps, ctx.figures / f"selectivity_{file_name(name)}.png",
                              f"{name}: category selectivity (t, one category vs the rest)", stimuli, lim, meaning)
    return out


def _layer_selectivity(maps: Sequence[SelectivityMap], sheet: Sequence[int],
                       ev: EvalSettings) -> tuple[dict[str, Any], list[int]]:
    """One layer's selectivity entry (per category statistics, map similarity) and the leading TDANN bins per map."""
    tdann = [map_tdann_smoothness(m.t, sheet, ev) for m in maps]
    entry = {"selectivity": {
        m.category: {"fraction_selective": m.fraction_selective, "morans_i": m.morans_i,
                     "morans_i_topolm": m.morans_i_topolm,
                     "tdann_smoothness": value, "tdann_bins": bins, "peak_t": float(np.max(m.t)),
                     **map_patches(m.t, sheet)}
        for m, (value, bins) in zip(maps, tdann)}, "map_similarity": {
        "categories": [m.category for m in maps],
        "pearson": [[map_pearson(a.t, b.t) for b in maps] for a in maps],
        "ssim": [[map_ssim(a.t, b.t) for b in maps] for a in maps] if min(sheet) >= 3 else None}}
    return entry, [bins for _, bins in tdann]


def predictivity(acts: Mapping[str, np.ndarray], ids: Sequence[Any], ev: EvalSettings) -> dict[str, Any]:
    """Cross-validated ridge from each layer's responses to user data (.npz: responses, stimuli)."""
    data = np.load(Path(ev.neural_data).expanduser(), allow_pickle=False)
    index = {str(s): i for i, s in enumerate(ids)}
    unknown = [str(s) for s in data["stimuli"] if str(s) not in index]
    if unknown:
        raise ConfigError(f"eval.neural_data names stimuli not in eval.stimuli, e.g. {unknown[:3]}")
    rows = [index[str(s)] for s in data["stimuli"]]
    layers = ev.predictivity_layers or list(acts)  # recorded ones (check_model_settings)
    return {name: ridge_predictivity(acts[name][rows], data["responses"], n_splits=ev.cv_folds,
                                     seed=ev.seed) for name in layers}


def vision_analyses(ctx: EvalContext, weights: Section) -> tuple[Section, dict[str, Any]]:
    """Every vision analysis: the per-layer section (`weights`, the weight maps, feed the c(d) figure) and the
    model-level results."""
    ev = ctx.settings
    loader, categories, ids, meaning = stimulus_loader(ctx)
    topo = [layer.name for layer in ctx.layers]
    names = topo + [n for n in ev.layers if n not in topo]
    phase("recording %d layers' responses to the stimuli (%s)", len(names), ev.stimuli or "data test split")
    acts, labels = record_with_labels(ctx.net, names, loader, ctx.device)
    acts = on_sheets(ctx.layers, acts)
    features = None
    if ev.ed_features == "unpooled":  # TDANN's convention: ED of every C·H·W value, one more pass
        features = record_activations(ctx.net, [l.name for l in ctx.layers], (x for x, _ in loader),
                                      reduce="flatten", device=ctx.device)
    phase("smoothness and effective dimensionality of %d topo layers", len(ctx.layers))
    per_layer = response_maps(ctx.layers, acts, ev, weights, ctx.figures, features)
    present = sorted({categories[i] for i in labels.tolist()}, key=categories.index)
    source = ev.stimuli or f"the test split of {type(ctx.data).__name__}"
    stimuli = f"{source}, {len(labels)} images of {len(present)} categories"
    phase("category selectivity maps of %d topo layers", len(ctx.layers))
    merge_layers(per_layer, selectivity(ctx, acts, labels, categories, meaning, stimuli))
    out: dict[str, Any] = {"stimuli": ev.stimuli or "data test split", "n_stimuli": int(len(labels)),
                           "categories": present, "category_meaning": {c: meaning[c] for c in present}}
    if ev.gratings:
        orientation, out["gratings"] = orientation_analysis(ctx)
        merge_layers(per_layer, orientation)
    if ev.efficiency:
        if ctx.data is None or ctx.no_classifier:
            ctx.skip("efficiency", "the task's test split and the model's classifier for accuracy")
        else:
            ctx.data.setup("test")
            evaluate = accuracy_on(whole_split(ctx.data.test_dataloader()), ev.metric_batches, ctx.device)
            n_classes = getattr(ctx.data.hparams, "num_classes", None)
            chance = (1.0 / n_classes, f"1/{n_classes} classes") if n_classes else None
            out["efficiency"] = efficiency(ctx.net, ctx.layers, ev, ctx.model_eval["downsample"], "accuracy", evaluate,
                                           ctx.figures, chance)
    if ev.readout:
        out["readout"] = readout(ctx, loader, np.asarray(categories)[labels])
    if ev.neural_data:
        out["predictivity"] = predictivity(acts, ids, ev)
    return per_layer, out
