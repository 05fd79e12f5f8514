"""Vision evaluation on sine gratings: every topo unit's orientation tuning, and the orientation maps' statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from toponets_exp.brain.gratings import (COLOURS, ORIENTATIONS, PHASES, TDANN_CYCLES, Tuning, grating_tuning,
                                         make_gratings)
from toponets_exp.brain.orientation_maps import (cluster_radii, orientation_bins, radial_power_profile,
                                                 spatial_entropy_map, spectrum_slope)
from toponets_exp.brain.pinwheels import count_pinwheels
from toponets_exp.brain.orientation_plot import plot_orientation_maps
from toponets_exp.data.vision import IMAGENET_MEAN, IMAGENET_STD
from toponets_exp.evaluation.aggregate import finite_mean
from toponets_exp.evaluation.context import EvalContext, Section, on_sheets, phase, stop_point
from toponets_exp.evaluation.maps import map_tdann_smoothness
from toponets_exp.evaluation.recording import record_activations
from toponets_exp.evaluation.settings import EvalSettings


def grating_input(ctx: EvalContext) -> tuple[int, tuple[float, ...], tuple[float, ...], str]:
    """Side and pixel standardisation of the images the model sees (its data's, else eval.image_size with ImageNet's
    statistics), and where they came from."""
    data = ctx.data
    if data is not None and hasattr(data, "pixel_stats") and hasattr(data, "input_size"):
        return int(data.input_size), *data.pixel_stats, f"{type(data).__name__}'s size and standardisation"
    return int(ctx.settings.image_size), IMAGENET_MEAN, IMAGENET_STD, "eval.image_size, ImageNet's standardisation"


def orientation_analysis(ctx: EvalContext) -> tuple[Section, dict[str, Any]]:
    """Per topo layer: orientation tuning to TDANN's gratings, the share of selective units, and the orientation
    map's TDANN smoothness (differences wrapped to ≤ 90°), All-TNN spatial entropy, cluster radius and radial spectrum
    slope, and TDANN's pinwheels (the per-layer section); the figure, pinwheels circled; what the gratings were.

    A unit's response is its rectified output averaged over the feature map's positions: TDANN and All-TNN tune
    post-ReLU responses, and a linear unit's response to a full-field grating, averaged over positions or phases,
    hardly depends on the grating's orientation."""
    ev = ctx.settings
    size, mean, std, source = grating_input(ctx)
    gratings = make_gratings(size)
    images = (gratings.images - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    phase("orientation tuning of %d topo layers to %d sine gratings (%dx%d pixels)", len(ctx.layers),
          len(images), size, size)
    batches = (images[i:i + ev.batch_size] for i in range(0, len(images), ev.batch_size))
    acts = on_sheets(ctx.layers, record_activations(ctx.net, [layer.name for layer in ctx.layers], batches,
                                                    reduce="mean", device=ctx.device, progress=False, rectify=True))
    maps, selective, notes, marks, out = {}, {}, {}, {}, {}
    for layer in ctx.layers:
        stop_point()
        tuning = grating_tuning(acts[layer.name], gratings, ev.orientation_preference)
        entry = _map_statistics(tuning, layer.sheet, ev)
        out[layer.name] = {"orientation": entry}
        maps[layer.name] = tuning.preferred_orientation.reshape(layer.sheet)
        selective[layer.name] = tuning.selective.reshape(layer.sheet)
        marks[layer.name] = entry.pop("pinwheel_centres")
        notes[layer.name] = (f"{100 * entry['fraction_selective']:.0f}% selective\n"
                             + (f"smoothness {entry['tdann_smoothness']:.2f}" if entry["tdann_bins"] >= 2
                                else "smoothness n/a (small sheet)")
                             + (f", {entry['pinwheels']} pinwheels" if entry["pinwheels"] is not None else ""))
    title = (f"Preferred orientation on the sheet ({ev.orientation_preference}; {len(images)} sine gratings); "
             "TDANN smoothness, differences wrapped to ≤ 90°")
    plot_orientation_maps(maps, selective, notes, ctx.figures / "orientation_maps.png", title, marks)
    return out, {"images": len(images), "size": size, "input": source, "orientations_deg": list(ORIENTATIONS),
                 "cycles_per_image": list(gratings.cycles_per_image), "phases_rad": list(PHASES),
                 "colours": list(COLOURS), "preference": ev.orientation_preference}


def _map_statistics(tuning: Tuning, sheet: tuple[int, int], ev: EvalSettings) -> dict[str, Any]:
    """One layer's tuning summary and its orientation map's statistics (TDANN smoothness and pinwheels, All-TNN);
    the pinwheel centres for the figure."""
    theta = tuning.preferred_orientation
    smooth, bins = map_tdann_smoothness(theta, sheet, ev, period=180.0)
    entropy = spatial_entropy_map(orientation_bins(theta, sheet, excluded=tuning.flat))
    radii = cluster_radii(orientation_bins(theta, sheet))
    finite = bool(np.all(np.isfinite(theta)))
    pinwheels = count_pinwheels(theta.reshape(sheet)) if finite and min(sheet) >= 3 else None
    cv = tuning.circular_variance
    return {
        "fraction_selective": float(np.mean(tuning.selective)),
        "fraction_responsive": float(np.mean(tuning.responsive)),
        "median_circular_variance": float(np.nanmedian(cv)) if np.any(np.isfinite(cv)) else None,
        "units_without_preference": int(np.sum(~np.isfinite(theta))),
        "tdann_smoothness": smooth, "tdann_bins": bins,
        "spatial_entropy": finite_mean(entropy.ravel().tolist()),
        "cluster_radius": float(np.mean(radii)),
        "units_without_cluster_radius": int(np.sum(np.isnan(radii))),
        "radial_spectrum_slope": (spectrum_slope(radial_power_profile(np.mod(theta, 180.0).reshape(sheet) / 180.0))
                                  if finite else None),
        "preferred_frequency_counts": np.bincount(tuning.preferred_frequency, minlength=len(TDANN_CYCLES)),
        "pinwheels": pinwheels.count if pinwheels else None,
        "pinwheels_positive": pinwheels.positive if pinwheels else None,
        "pinwheels_negative": pinwheels.negative if pinwheels else None,
        "column_spacing": pinwheels.column_spacing if pinwheels else None,
        "pinwheel_density": pinwheels.density if pinwheels else None,
        "pinwheel_centres": pinwheels.centres if pinwheels else [],
    }
