"""What evaluating a TDANN trunk at its positions costs: one `run.py task=eval` of a ResNet-18 SimCLR trunk in TDANN's
VISSL layout with a TDANN positions directory for its eight block outputs (1 404 928 units at 224 px).

Run: python benchmarks/peer_eval_bench.py [--stimuli 40] [--image-size 224] [--quick] [-- extra run.py overrides]
Prints a markdown table of the evaluation's phases (from its log), then one machine-readable line.

The published files are on OSF (unreachable here), so the script writes stand-ins in their exact layouts: a VISSL
checkpoint of a randomly initialised torchvision ResNet-18 (the cost does not depend on the weights' values) and a
version-2 positions directory whose unit (c, h, w) sits at its retinotopic cell of the layer's tissue plus a uniform
jitter inside the cell (TDANN's retinotopic initialisation spreads a layer's channels over its cells; its swap
optimisation only permutes them, which changes no cost). Tissue sizes are TDANN's (spacetorch/constants.py:
layer1 retina 2.4 mm, layer2 V1 36.75 mm, layer3.0 V2 35 mm, layer3.1 V4 22.4 mm, layer4 VTC 70 mm). Stimuli:
`--stimuli` images of 4 categories (a fixed random image per category plus noise), PNG at `--image-size`.
The evaluation runs with its defaults (conf/eval/auto.yaml), gratings included, on 2 CPU threads; peak memory is the
child process's maximum resident set size (getrusage).
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.peer_files import block_shapes, tdann_resnet18, tdann_tissue, write_tdann_positions, write_vissl  # noqa: E402
PHASE = re.compile(r"^\[(?P<time>[\d-]+ [\d:,]+)\]\[[^\]]+\]\[\w+\] - Evaluation: (?P<what>.*)$")
TARGET_S, TARGET_GB = 600.0, 8.0


def write_stimuli(root: Path, count: int, size: int) -> None:
    """`count` PNG images of 4 categories (one random base image per category, plus noise)."""
    rng = np.random.default_rng(0)
    bases = rng.uniform(0, 255, (4, size, size, 3))
    for i in range(count):
        folder = root / f"category_{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        image = np.clip(bases[i % 4] + rng.normal(0, 40, bases[i % 4].shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:03d}.png")


def phases(log: Path, end: float) -> list[tuple[str, float]]:
    """(phase, seconds) of each 'Evaluation: ...' progress line until the next one (the last until `end`)."""
    marks = []
    for line in log.read_text().splitlines():
        match = PHASE.match(line)
        if match:
            stamp = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            marks.append((match["what"], stamp))
    return [(what, (marks[k + 1][1] if k + 1 < len(marks) else end) - at) for k, (what, at) in enumerate(marks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stimuli", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--quick", action="store_true", help="8 stimuli at 64 px, no gratings: a smoke run")
    parser.add_argument("overrides", nargs="*", help="extra run.py overrides")
    args = parser.parse_args()
    count, size = (8, 64) if args.quick else (args.stimuli, args.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        net = tdann_resnet18(supervised=False)
        write_vissl(work / "model_final_checkpoint_phase199.torch", net)
        shapes = block_shapes(net, size)
        write_tdann_positions(work / "positions", shapes, tdann_tissue)
        units = sum(int(np.prod(shape)) for shape in shapes.values())
        write_stimuli(work / "stimuli", count, size)
        command = [sys.executable, "run.py", "task=eval", "model=tdann_resnet",
                   f"ckpt_path={work / 'model_final_checkpoint_phase199.torch'}", f"eval.positions.dir={work / 'positions'}",
                   f"eval.stimuli={work / 'stimuli'}", f"eval.image_size={size}", f"hydra.run.dir={work / 'eval'}",
                   *(["eval.gratings=false"] if args.quick else []), *args.overrides]
        start = time.time()
        proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.time() - start
        if proc.returncode != 0:
            sys.exit(f"run.py failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        rows = phases(work / "eval" / "run.log", start + seconds)
    print(f"TDANN ResNet-18 trunk at its positions: {units} units in 8 layers, {count} stimuli at {size} px\n")
    print("| phase | s |\n|---|---|")
    for what, took in rows:
        print(f"| {what} | {took:.1f} |")
    print(f"| **whole run.py (start-up included)** | **{seconds:.1f}** |\n")
    print(f"targets: < {TARGET_S:.0f} s and < {TARGET_GB:.0f} GB at 40 stimuli of 224 px")
    print(f"peer_eval_seconds={seconds:.1f} peak_rss_gb={peak_gb:.2f} units={units}")


if __name__ == "__main__":
    main()
