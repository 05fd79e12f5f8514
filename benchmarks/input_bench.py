"""ImageNet input speed per loader worker: class folders (ImageFolder + PIL) vs the prepared litdata chunks.

Run: python benchmarks/input_bench.py [--images 2000] [--classes 100] [--rounds 3] [--quick]
Writes a synthetic class-folder tree (500x375 JPEGs, quality 90) to a temporary directory and prepares it with the
code of task=prepare. Then, in this one process (num_workers=0, one torch thread, as in a DataLoader worker; warm
caches; after a warm-up), it draws training tensors (RandomResizedCrop + flip, in the training loader's order and
seeds) from each path: item by item, which is what the prepared path changes, and as the loader's collated batches,
which add the same float32 copy to both. Prints a table of every round, a line with the best batch rounds and,
last, one with the best item rounds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toponets_exp.data.prepared import PreparedImages, class_folder, prepare_split  # noqa: E402
from toponets_exp.data.resumable import ResumableLoader  # noqa: E402
from toponets_exp.data.vision import Transformed, imagenet_train_transform  # noqa: E402

log = logging.getLogger("input_bench")


def write_folders(root: Path, images: int, classes: int, width: int, height: int, quality: int) -> None:
    """root/train/<class>/<i>.JPEG: smooth colour waves with noise (≈ photo-sized files), classes round-robin."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for c in range(classes):
        (root / "train" / f"n{c:08d}").mkdir(parents=True)
    for i in range(images):
        freq, phase = rng.uniform(0.01, 0.08, (3, 2)), rng.uniform(0, 6, 3)
        waves = np.stack([np.sin(xx * freq[k, 0] + phase[k]) * np.cos(yy * freq[k, 1]) for k in range(3)], -1)
        pixels = 127.5 * (waves + 1) + rng.normal(0, 20, waves.shape).astype(np.float32)
        Image.fromarray(np.uint8(np.clip(pixels, 0, 255))).save(
            root / "train" / f"n{i % classes:08d}" / f"{i}.JPEG", quality=quality)


def images_per_second(dataset: Dataset, batch_size: int, warmup: int, epoch: int, collate: bool) -> float:
    """Training images per second over one epoch in the loader's order and seeds, after `warmup` untimed batches:
    the items alone (decode + transform) or the loader's batches (+ collate into one float tensor)."""
    loader = ResumableLoader(dataset, batch_size=batch_size, seed=0, num_workers=0)
    loader.sampler.set_epoch(epoch)
    if collate:
        batches: Iterable[Any] = loader
    else:
        keys = list(loader.sampler)
        batches = ([loader.dataset[key] for key in keys[i:i + batch_size]] for i in range(0, len(keys), batch_size))
    count, start = 0, 0.0
    for i, batch in enumerate(batches):
        if i == warmup - 1:
            start = time.perf_counter()
        elif i >= warmup:
            count += len(batch[0]) if collate else len(batch)
    return count / (time.perf_counter() - start)


def folder_size(path: Path) -> float:
    """Megabytes of the files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    """Make the data, prepare it, time both paths in alternating rounds, print the table and the result line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the synthetic files")
    parser.add_argument("--max-side", type=int, default=256, help="data.prepared_max_side")
    parser.add_argument("--image-size", type=int, default=224, help="data.image_size (the training crop)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches at the start of each epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each path, alternating")
    parser.add_argument("--prepare-workers", type=int, default=2, help="conversion processes (data.num_workers)")
    parser.add_argument("--quick", action="store_true", help="300 images, 10 classes, 1 round: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.images, args.classes, args.rounds = 300, 10, 1
    if args.warmup < 1 or args.images <= args.warmup * args.batch_size:
        parser.error("--warmup must be >= 1 and leave batches to time (--images > warmup x batch size)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    transform = imagenet_train_transform(args.image_size)
    with tempfile.TemporaryDirectory(prefix="input_bench_") as tmp:
        root = Path(tmp)
        log.info("writing %d JPEGs of %dx%d in %d classes", args.images, args.width, args.height, args.classes)
        write_folders(root, args.images, args.classes, args.width, args.height, args.quality)
        start = time.perf_counter()
        prepare_split(class_folder(root / "train"), root / "prepared" / "train", args.max_side, 90,
                      num_workers=args.prepare_workers)
        prepare_s = time.perf_counter() - start
        paths = {"folder": Transformed(ImageFolder(str(root / "train")), transform),
                 "prepared": Transformed(PreparedImages(root / "prepared" / "train"), transform)}
        measures = [(name, collate) for collate in (False, True) for name in paths]
        rounds: dict[tuple[str, bool], list[float]] = {measure: [] for measure in measures}
        for r in range(args.rounds):
            for name, collate in measures:
                speed = images_per_second(paths[name], args.batch_size, args.warmup, r, collate)
                rounds[name, collate].append(speed)
                log.info("round %d %s %s: %.0f images/s", r, name, "batches" if collate else "items", speed)
        sizes = {"folder": folder_size(root / "train"), "prepared": folder_size(root / "prepared" / "train")}
    best = {measure: max(values) for measure, values in rounds.items()}
    print("| path | per worker | images/s, rounds | best | MB on disk |\n|---|---|---|---|---|")
    for (name, collate), values in rounds.items():
        what = "batches (items + collate)" if collate else "items (decode + transform)"
        print(f"| {name} | {what} | {', '.join(f'{v:.0f}' for v in values)} | {best[name, collate]:.0f} | "
              f"{sizes[name]:.0f} |")
    print(f"\nprepared {args.images} images (max side {args.max_side}) with {args.prepare_workers} processes in "
          f"{prepare_s:.1f} s ({args.images / prepare_s:.0f} images/s); training crop {args.image_size}, batch "
          f"{args.batch_size}, one torch thread")
    print(f"batches: images_per_s_folder={best['folder', True]:.1f} images_per_s_prepared="
          f"{best['prepared', True]:.1f} speedup={best['prepared', True] / best['folder', True]:.2f}")
    print(f"images_per_s_folder={best['folder', False]:.1f} images_per_s_prepared={best['prepared', False]:.1f} "
          f"speedup_prepared_per_worker={best['prepared', False] / best['folder', False]:.2f}")


if __name__ == "__main__":
    main()
