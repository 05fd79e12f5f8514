"""The vision evaluation of a positions set's layers (units at their own coordinates): category selectivity and
TDANN's patches, orientation maps, and the linear read-out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from toponets_exp.brain.gratings import grating_tuning, make_gratings
from toponets_exp.brain.position_plots import plot_position_maps
from toponets_exp.brain.stats import d_prime, welch_t
from toponets_exp.data.resumable import whole_split
from toponets_exp.errors import ConfigError
from toponets_exp.evaluation.aggregate import finite_mean
from toponets_exp.evaluation.context import EvalContext, Section, file_name, phase, stop_point
from toponets_exp.evaluation.gratings_analyses import grating_input
from toponets_exp.evaluation.positioned import PositionedLayer, PositionSet
from toponets_exp.evaluation.positioned_maps import (layer_maps, layer_seeds, t_limit, t_map_patches,
                                                     tdann_smoothness)
from toponets_exp.evaluation.readout import readout
from toponets_exp.evaluation.recording import record_activations
from toponets_exp.evaluation.stimuli import stimulus_loader
from toponets_exp.evaluation.vision_analyses import STD_DDOF, accuracy_on


def check_sizes(ctx: EvalContext, positions: PositionSet, batch: Any, reduce: str = "flatten",
                forward: Any = None) -> None:
    """Each positioned module's output holds as many units as its positions (one input's forward)."""
    layers = positions.layers
    sizes = record_activations(ctx.net, [l.module for l in layers], [batch], reduce=reduce, device=ctx.device,
                               forward=forward, progress=False, inputs={l.module for l in layers if l.record_input})
    wrong = [f"{l.name} ({l.total} positions, {sizes[l.module].shape[1]} units)" for l in layers
             if sizes[l.module].shape[1] != l.total]
    if wrong:
        raise ConfigError(f"eval.positions.dir does not fit the model: {', '.join(wrong[:3])}; give the positions "
                          "made for this architecture")


def record_units(ctx: EvalContext, layers: list[PositionedLayer], batches: Any, rectify: bool = False,
                 reduce: str = "flatten", forward: Any = None) -> dict[str, np.ndarray]:
    """The recorded units of each positioned layer, by layer name."""
    acts = record_activations(ctx.net, [l.module for l in layers], batches, reduce=reduce, device=ctx.device,
                              forward=forward, rectify=rectify, units={l.module: l.units for l in layers},
                              inputs={l.module for l in layers if l.record_input})
    return {l.name: acts[l.module] for l in layers}


def _category_maps(acts: np.ndarray, named: np.ndarray, present: list[str], layer: PositionedLayer,
                   ctx: EvalContext, seed: int) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
    """One layer's per-category t maps: fraction selective, TDANN smoothness over the units responding above TDANN's
    floor, TDANN's patches in mm; Pearson between the maps (SSIM is grid-only: None)."""
    ev = ctx.settings
    sampling = ev.positions.selectivity
    floor = sampling.min_mean_response
    eligible = None if floor is None else acts.mean(axis=0) > floor
    maps, entries = [], {}
    for category in present:
        inside = named == category
        t = welch_t(acts[inside], acts[~inside], ddof=STD_DDOF[ev.selectivity_std])
        dp = d_prime(acts[inside], acts[~inside], ddof=STD_DDOF[ev.selectivity_std])
        entries[category] = {"fraction_selective": float(np.mean(t > ev.selectivity_threshold)),
                             "peak_t": float(np.max(t)), "mean_d_prime": finite_mean(dp.tolist()),
                             **tdann_smoothness(t, layer, sampling, seed, eligible),
                             **t_map_patches(t, layer)}
        maps.append((category, t))
    pearson = [[float(np.corrcoef(a, b)[0, 1]) for _, b in maps] for _, a in maps]
    return {"selectivity": entries, "map_similarity": {"categories": present, "pearson": pearson, "ssim": None}}, maps


def positioned_vision(ctx: EvalContext, positions: PositionSet) -> tuple[Section, dict[str, Any]]:
    """Every vision measure at the set's positions, the read-out, and the figures."""
    ev, layers = ctx.settings, positions.layers
    loader, categories, _, _ = stimulus_loader(ctx)
    check_sizes(ctx, positions, next(iter(loader))[0][:1])
    labels: list[np.ndarray] = []

    def images() -> Any:
        for x, y in loader:
            labels.append(np.asarray(y))
            yield x

    phase("recording %d positioned layers' units (%s)", len(layers), ev.stimuli or "data test split")
    acts = record_units(ctx, layers, images())
    named = np.asarray(categories)[np.concatenate(labels)]
    present = [c for c in categories if np.any(named == c)]
    seeds = layer_seeds(layers, ev.seed)
    phase("ED, response correlation vs distance, category t maps, TDANN smoothness and patches of %d positioned "
          "layers", len(layers))
    per_layer: Section = {}
    for layer in layers:
        stop_point()
        per_layer[layer.name] = layer_maps(acts[layer.name], layer, positions, ev, seeds[layer.name])
        entry, maps = _category_maps(acts[layer.name], named, present, layer, ctx, seeds[layer.name])
        per_layer[layer.name].update(entry)
        lim = t_limit([t for _, t in maps])
        plot_position_maps(maps, layer.coordinates, ctx.figures / f"selectivity_{file_name(layer.name)}.png",
                           f"{layer.name}: category selectivity (t) at TDANN's positions", lim)
    out = {"stimuli": ev.stimuli or "data test split", "n_stimuli": int(len(named)), "categories": present}
    if ev.gratings:
        per_layer_orientation, out["gratings"] = positioned_orientation(ctx, positions)
        for name, entry in per_layer_orientation.items():
            per_layer[name]["orientation"] = entry
    if ctx.data is None or ctx.no_classifier:
        ctx.skip("task_accuracy", "the task's test split and the model's classifier")
    else:  # the classifier's accuracy (pruning and sheet downsampling are grid-only here)
        ctx.data.setup("test")
        out["task_accuracy"] = accuracy_on(whole_split(ctx.data.test_dataloader()), ev.metric_batches,
                                           ctx.device)(ctx.net)
    if ev.readout:
        out["readout"] = readout(ctx, loader, named)
    return per_layer, out


def positioned_orientation(ctx: EvalContext, positions: PositionSet) -> tuple[Section, dict[str, Any]]:
    """Per layer: the orientation tuning of a sample of its units to TDANN's gratings and the orientation map's TDANN
    smoothness at their positions (differences wrapped to <= 90 degrees); the figure."""
    ev = ctx.settings
    sampling = ev.positions.orientation
    size, mean, std, source = grating_input(ctx)
    gratings = make_gratings(size)
    images = (gratings.images - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    rng = np.random.default_rng(ev.seed)
    tuned = [_subset(layer, sampling.max_units, rng) for layer in positions.layers]
    phase("orientation tuning of %d positioned layers to %d sine gratings", len(tuned), len(images))
    batches = (images[i:i + ev.batch_size] for i in range(0, len(images), ev.batch_size))
    acts = record_units(ctx, tuned, batches, rectify=True)
    out = {}
    for layer, seed in zip(tuned, layer_seeds(tuned, ev.seed).values()):
        stop_point()
        tuning = grating_tuning(acts[layer.name], gratings, ev.orientation_preference)
        theta = tuning.preferred_orientation
        finite = np.isfinite(theta)
        out[layer.name] = {"units_tuned": int(len(layer.units)), "fraction_selective": float(np.mean(tuning.selective)),
                           "units_without_preference": int(np.sum(~finite)),
                           **tdann_smoothness(theta, layer, sampling, seed, period=180.0)}
        plot_position_maps([(layer.name, np.where(finite, theta, np.nan))], layer.coordinates,
                           ctx.figures / f"orientation_{file_name(layer.name)}.png",
                           f"{layer.name}: preferred orientation (deg) at TDANN's positions", cyclic=True)
    return out, {"images": len(images), "size": size, "input": source, "preference": ev.orientation_preference}


def _subset(layer: PositionedLayer, max_units: int | None, rng: np.random.Generator) -> PositionedLayer:
    """The layer restricted to a uniform sample of at most max_units of its recorded units."""
    if max_units is None or len(layer.units) <= max_units:
        return layer
    keep = np.sort(rng.choice(len(layer.units), size=max_units, replace=False))
    return PositionedLayer(layer.name, layer.module, layer.record_input, layer.total, layer.units[keep],
                           layer.coordinates[keep])
