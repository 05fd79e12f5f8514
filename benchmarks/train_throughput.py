"""ResNet-18 training throughput on prepared ImageNet-like data: images/s and TopoLoss's share of the step.

Run: python benchmarks/train_throughput.py [--device cuda|cpu] [--image-size 192] [--batch-size 256] [--steps 40]
                                           [--workers 12] [--quick]
Writes synthetic photo-sized JPEGs (benchmarks/input_bench.py's), prepares them with task=prepare's code, then trains
`experiment=resnet18_imagenet` from those chunks (data.prepared_dir) through the objects run.py builds, on one device
(CUDA: bf16-mixed and channels_last, as hardware=gpu), three times: τ = 0, τ = 5, τ = 5 with topo.overlap=true.
After warm-up steps it times every training step (batch start to batch end, the device synchronised at the end),
the wait for the loader between steps, and TopoLoss's optimizer-step hook (synchronised before and after).
Prints a markdown table, then one line of the numbers measured in this run.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.input_bench import write_folders  # noqa: E402
from toponets_exp.data.prepared import class_folder, prepare_split  # noqa: E402
from toponets_exp.build import (build_datamodule, build_module, build_topo, seed_and_check,  # noqa: E402
                                      select_topo_layers)
from toponets_exp.topo import TopoLossCallback  # noqa: E402

log = logging.getLogger("train_throughput")
ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [("0", False), ("5", False), ("5", True)]  # (τ, topo.overlap)


def sync(device: str) -> None:
    """Wait for queued device work."""
    if device == "cuda":
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """Wall-clock of every training step, of the loader wait before it, and of TopoLoss's hook inside it."""

    def __init__(self, device: str, warmup: int, topo: TopoLossCallback) -> None:
        super().__init__()
        self.device, self.warmup = device, warmup
        self.steps: list[float] = []
        self.waits: list[float] = []
        self.hooks: list[float] = []
        self._start = self._end = 0.0
        hook = topo.on_before_optimizer_step

        def timed_hook(*args: Any) -> None:
            sync(device)
            start = time.perf_counter()
            hook(*args)
            sync(device)
            if len(self.steps) + 1 > warmup:
                self.hooks.append(time.perf_counter() - start)

        topo.on_before_optimizer_step = timed_hook  # type: ignore[method-assign]

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._start = time.perf_counter()
        if self._end and len(self.steps) >= self.warmup:
            self.waits.append(self._start - self._end)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        sync(self.device)
        self._end = time.perf_counter()
        self.steps.append(self._end - self._start)


def make_data(root: Path, args: argparse.Namespace) -> Path:
    """Synthetic class folders with enough images for every timed step in one epoch, prepared once."""
    images = args.batch_size * (args.warmup + args.steps + 1)
    distinct = min(images, args.distinct)
    log.info("writing %d synthetic %dx%d JPEGs (%d distinct), %d classes", images, args.width, args.height,
             distinct, args.classes)
    write_folders(root / "src", distinct, args.classes, args.width, args.height, 90)
    files = sorted((root / "src" / "train").rglob("*.JPEG"))
    for i in range(distinct, images):  # more files of the same pixels: decoding costs the same
        copy = files[i % distinct].with_name(f"{i}.JPEG")
        os.link(files[i % distinct], copy)
    start = time.perf_counter()
    prepare_split(class_folder(root / "src" / "train"), root / "prepared" / "train", args.max_side, 90,
                  num_workers=args.workers)
    log.info("prepared %d images in %.1f s", images, time.perf_counter() - start)
    (root / "prepared" / "val").symlink_to(root / "prepared" / "train")  # the DataModule opens both splits
    return root / "prepared"


def run(prepared: Path, tau: str, overlap: bool, args: argparse.Namespace) -> dict[str, float]:
    """Train warm-up + timed steps of one variant; its timings."""
    overrides = ["experiment=resnet18_imagenet", f"hardware={'gpu' if args.device == 'cuda' else 'cpu'}",
                 f"data.prepared_dir={prepared}", f"data.num_classes={args.classes}",
                 f"data.image_size={args.image_size}", "data.eval_image_size=null", f"data.batch_size={args.batch_size}",
                 f"data.prepared_max_side={args.max_side}", f"data.num_workers={args.workers}",
                 f"data.pin_memory={args.device == 'cuda'}", f"topo.weight={tau}", f"topo.overlap={overlap}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    seed_and_check(cfg)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    topo = build_topo(cfg, select_topo_layers(cfg, module.net))
    timer = StepTimer(args.device, args.warmup, topo)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision,
                        max_steps=args.warmup + args.steps, limit_val_batches=0, num_sanity_val_steps=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[topo, timer])
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, datamodule=datamodule)
    timed = timer.steps[args.warmup:]
    step = statistics.median(timed)
    hook = statistics.median(timer.hooks) if timer.hooks else 0.0
    return {"images_per_s": args.batch_size * len(timed) / (sum(timed) + sum(timer.waits)),
            "step_ms": step * 1e3, "wait_ms": statistics.median(timer.waits) * 1e3 if timer.waits else 0.0,
            "hook_ms": hook * 1e3, "hook_share": hook / step,
            "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if args.device == "cuda" else float("nan")}


def main() -> None:
    """Prepare the data, run the three variants, print the table and the result line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image-size", type=int, default=192, help="data.image_size (the training crop)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps (cuDNN autotuning, worker start)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument("--workers", type=int, default=min(12, os.cpu_count() or 1), help="data.num_workers")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--distinct", type=int, default=512, help="distinct synthetic images (the rest are links)")
    parser.add_argument("--max-side", type=int, default=256, help="data.prepared_max_side")
    parser.add_argument("--quick", action="store_true", help="tiny images, batch 8, 3 timed steps: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.image_size, args.batch_size, args.warmup, args.steps = 32, 8, 1, 3
        args.workers, args.classes, args.width, args.height, args.max_side = 0, 4, 64, 48, 48
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("lightning").setLevel(logging.WARNING)
    results = {}
    with tempfile.TemporaryDirectory(prefix="train_throughput_") as tmp:
        prepared = make_data(Path(tmp), args)
        for tau, overlap in VARIANTS:
            results[tau, overlap] = run(prepared, tau, overlap, args)
            log.info("τ=%s overlap=%s: %s", tau, overlap, results[tau, overlap])
    base = results["0", False]["step_ms"]
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"ResNet-18 (experiment=resnet18_imagenet), {name}, {args.image_size} px, batch {args.batch_size}, "
          f"{'bf16-mixed, channels_last' if args.device == 'cuda' else 'float32'}, {args.workers} loader workers "
          f"on prepared JPEGs; medians of {args.steps} steps after {args.warmup}\n")
    print("| τ | topo.overlap | images/s | step ms | loader wait ms | TopoLoss hook ms | hook / step | step vs τ=0 |"
          " peak GiB |\n|---|---|---|---|---|---|---|---|---|")
    for (tau, overlap), r in results.items():
        print(f"| {tau} | {str(overlap).lower()} | {r['images_per_s']:.0f} | {r['step_ms']:.1f} | {r['wait_ms']:.1f} "
              f"| {r['hook_ms']:.2f} | {100 * r['hook_share']:.1f} % | {100 * (r['step_ms'] / base - 1):+.1f} % "
              f"| {r['peak_gib']:.1f} |")
    sync_r, over_r = results["5", False], results["5", True]
    print(f"images_per_s_tau0={results['0', False]['images_per_s']:.1f} images_per_s_tau5={sync_r['images_per_s']:.1f} "
          f"images_per_s_tau5_overlap={over_r['images_per_s']:.1f} hook_share_tau5_pct={100 * sync_r['hook_share']:.2f} "
          f"hook_share_tau5_overlap_pct={100 * over_r['hook_share']:.2f}")


if __name__ == "__main__":
    main()
