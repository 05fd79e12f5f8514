"""Evaluation throughput: one 512-unit layer × 2 000 stimuli through the vision evaluation's per-layer analyses.

Run: python benchmarks/eval_bench.py [--image-size 32|64] [--categories 10] [--per-category 200] [--repeats N] [--quick]
Prints a markdown table, then one machine-readable line of seconds (see benchmarks/README.md).

Backbone: torchvision ResNet-18 (random init, seed 0, 10 classes), recorded at `layer4.1.conv2` (512 channels,
sheet 16×32). Stimuli: `categories` × `per-category` synthetic images (a fixed random image per category plus
unit Gaussian noise), labels in order, served by a DataLoader with the evaluation's batch size. Settings: the
evaluation's defaults, conf/eval/auto.yaml checked by evaluation.settings.eval_settings. Each part calls the library
function the evaluation calls (evaluation.vision_analyses.vision_analyses, evaluation.maps.response_maps /
weight_maps, evaluation.vision_analyses.selectivity) with the same arguments:

- record: evaluation.vision_analyses.record_with_labels (evaluation.recording.record_activations, spatial mean per
  channel);
- smoothness: brain.smoothness.smoothness (eval.smoothness, eval.max_pairs) of the layer's weights and of its
  response profiles, and TDANN's smoothness (brain.tdann via evaluation.maps.map_tdann_smoothness, eval.tdann)
  of every category's t map;
- ED: brain.dimensionality.effective_dimensionality of the pooled responses (eval.ed_features=pooled);
- selectivity: brain.selectivity.selectivity_map per category (Welch t, d′, fraction selective, Moran's I;
  eval.selectivity_threshold, eval.selectivity_std) and the Pearson / SSIM matrices between the category maps.

Not timed: figures (matplotlib rendering, not a metric) and the efficiency curves (task accuracy of the whole model
under pruning and sheet downsampling: forward passes over eval.metric_batches test batches per setting, not an
analysis of the recorded layer). The evaluation has no permutation test on this path.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from threadpoolctl import threadpool_limits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.timing import Timing  # noqa: E402
from toponets_exp.brain import (effective_dimensionality, map_pearson, map_ssim, response_profiles,  # noqa: E402
                                selectivity_map, smoothness)
from toponets_exp.evaluation.maps import map_tdann_smoothness  # noqa: E402
from toponets_exp.evaluation.settings import EvalSettings, eval_settings  # noqa: E402
from toponets_exp.evaluation.vision_analyses import STD_DDOF, record_with_labels  # noqa: E402
from toponets_exp.topo import TopoLayer, select_layers, unit_matrix  # noqa: E402

log = logging.getLogger("eval_bench")
LAYER = "layer4.1.conv2"
TARGET_S = 5.0
PARTS = {  # key of the last line -> the table rows it sums
    "record_s": ["record activations"],
    "smoothness_s": ["smoothness: weights", "smoothness: responses", "smoothness: TDANN of the t maps"],
    "ed_s": ["effective dimensionality"],
    "selectivity_s": ["selectivity maps (t, d′, Moran's I)", "map similarity (Pearson, SSIM)"],
}


def default_settings() -> EvalSettings:
    """eval.* as the evaluation resolves and checks it, from conf/eval/auto.yaml with seed 0."""
    cfg = OmegaConf.create({"seed": 0, "eval": OmegaConf.load(ROOT / "conf" / "eval" / "auto.yaml")})
    return eval_settings(cfg)


def stimuli(args: argparse.Namespace, batch_size: int) -> DataLoader:
    """Category stimuli: a fixed random image per category plus unit Gaussian noise, labels in order."""
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(args.categories).repeat_interleave(args.per_category)
    prototypes = torch.randn(args.categories, 3, args.image_size, args.image_size, generator=g)
    images = prototypes[labels] + torch.randn(len(labels), 3, args.image_size, args.image_size, generator=g)
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size)


def backbone(categories: int) -> tuple[nn.Module, TopoLayer]:
    """torchvision ResNet-18 (seed 0) and its `layer4.1.conv2` as a topo layer (512 units, 16×32 sheet)."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(weights=None, num_classes=categories)
    return net, select_layers(net, [LAYER], 3.0, 1.0)[0]


def evaluation_pass(net: nn.Module, layer: TopoLayer, loader: DataLoader, ev: EvalSettings,
                    clock: Callable[[str, Callable[[], Any]], Any]) -> dict[str, float]:
    """One layer's analyses in the evaluation's order, each timed by `clock(row, fn)`; a few of their values."""
    acts, labels = clock("record activations", lambda: record_with_labels(net, [layer.name], loader,
                                                                           torch.device("cpu")))
    responses = acts[layer.name]
    vectors = unit_matrix(layer.param.detach().float().cpu(), layer.unit_dim).numpy()
    weight = clock("smoothness: weights", lambda: smoothness(vectors, layer.sheet, ev.smoothness,
                                                             ev.max_pairs, ev.seed))
    ed = clock("effective dimensionality", lambda: effective_dimensionality(responses))
    response = clock("smoothness: responses", lambda: smoothness(response_profiles(responses), layer.sheet,
                                                                 ev.smoothness, ev.max_pairs, ev.seed))
    categories = [str(c) for c in range(int(labels.max()) + 1)]
    named = np.asarray(categories)[labels]
    maps = clock("selectivity maps (t, d′, Moran's I)", lambda: [
        selectivity_map(responses, named, c, layer.sheet, ev.selectivity_threshold,
                        ddof=STD_DDOF[ev.selectivity_std]) for c in categories])
    tdann = clock("smoothness: TDANN of the t maps", lambda: [map_tdann_smoothness(m.t, layer.sheet, ev)
                                                              for m in maps])
    clock("map similarity (Pearson, SSIM)", lambda: ([[map_pearson(a.t, b.t) for b in maps] for a in maps],
                                                     [[map_ssim(a.t, b.t) for b in maps] for a in maps]))
    return {"stimuli": float(len(labels)), "units": float(responses.shape[1]), "weight_smoothness": weight.value,
            "response_smoothness": response.value, "effective_dimensionality": ed,
            "tdann_smoothness": float(np.nanmean([value for value, _ in tdann])),
            "fraction_selective": float(np.mean([m.fraction_selective for m in maps])),
            "morans_i": float(np.mean([m.morans_i for m in maps]))}


def measure(args: argparse.Namespace) -> tuple[dict[str, Timing], list[float], dict[str, float]]:
    """Per-row timings and per-pass totals over `repeats` passes after `warmup` untimed ones, and the values."""
    ev = default_settings()
    net, layer = backbone(args.categories)
    loader = stimuli(args, ev.batch_size)
    samples: dict[str, list[float]] = {}

    def clock(row: str, fn: Callable[[], Any]) -> Any:
        """Run `fn`, keeping its seconds under `row`."""
        start = time.perf_counter()
        out = fn()
        samples.setdefault(row, []).append(time.perf_counter() - start)
        return out

    for _ in range(args.warmup):
        values = evaluation_pass(net, layer, loader, ev, lambda row, fn: fn())
    for _ in range(args.repeats):
        values = evaluation_pass(net, layer, loader, ev, clock)
    totals = [sum(row[i] for row in samples.values()) for i in range(args.repeats)]
    return {row: Timing(s) for row, s in samples.items()}, totals, values


def table(timings: dict[str, Timing], totals: list[float], values: dict[str, float],
          args: argparse.Namespace) -> str:
    """The markdown table of this run."""
    total = statistics.median(totals)
    lines = [(f"Evaluation of one {int(values['units'])}-unit layer ({LAYER}, torchvision ResNet-18) × "
             f"{int(values['stimuli'])} stimuli ({args.categories} categories × {args.per_category}, "
             f"{args.image_size}×{args.image_size}), cpu ({args.threads} thread(s)), eval defaults, "
             f"{args.repeats} passes, ms: median (IQR, min)"), "",
             "| part | time ms | share of total |", "|---|---|---|"]
    for row, timing in timings.items():
        lines.append(f"| {row} | {timing.describe()} | {timing.median / total * 100:.1f} % |")
    lines.append(f"| **total** (per pass) | {Timing(totals).describe()} | target < {TARGET_S:.0f} s: "
                 f"{'met' if total < TARGET_S else 'missed'} |")
    lines += ["", "Values: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()
                                          if k not in ("stimuli", "units"))]
    return "\n".join(lines)


def main() -> None:
    """Parse options, run the passes in this process, print the table and the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=32, help="stimulus side in pixels (64: ~4x the forward)")
    parser.add_argument("--categories", type=int, default=10)
    parser.add_argument("--per-category", type=int, default=200, help="stimuli per category")
    parser.add_argument("--repeats", type=int, default=5, help="timed evaluation passes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS/OpenMP threads (default 1: on a shared machine a descheduled thread "
                             "stalls every parallel op)")
    parser.add_argument("--quick", action="store_true", help="2 passes, no warm-up: a smoke run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.warmup = 1
    if args.quick:
        args.repeats, args.warmup = 2, 0
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        timings, totals, values = measure(args)
    print(table(timings, totals, values, args))
    print()
    parts = {key: sum(timings[row].median for row in rows) for key, rows in PARTS.items()}
    print(f"eval_seconds_total={statistics.median(totals):.3f} "
          + " ".join(f"{key}={seconds:.3f}" for key, seconds in parts.items()))


if __name__ == "__main__":
    main()
