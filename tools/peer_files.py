"""Stand-ins for the field's published files, written in their exact layouts with random weights: TDANN's VISSL
checkpoints and positions directories (neuroailab/TDANN@80c585d), TopoLM's checkpoints and position pickles
(epflneuroailab/topolm@46b5653). The README's lines and benchmarks/peer_eval_bench.py evaluate them here, where the
real files (OSF, Google Drive) cannot be downloaded."""

from __future__ import annotations

import logging
import pickle
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision import models

log = logging.getLogger("peer_files")
TDANN_RECORD = ("spacetorch.models.positions", "LayerPositions")
TDANN_TISSUE_MM = {"layer1": 2.4, "layer2": 36.75, "layer3.0": 35.0, "layer3.1": 22.4, "layer4": 70.0}  # retina, V1,
# V2, V4, VTC: TDANN's tissue sizes (spacetorch/constants.py) by block, as its retinotopic initialisation assigns them
TOPOLM_RECORD = ("positions", "LayerPositions")


def tdann_tissue(name: str) -> float:
    """The tissue size (mm) of a ResNet block's area in TDANN's layout."""
    return TDANN_TISSUE_MM[name[:8]] if name[:8] in TDANN_TISSUE_MM else TDANN_TISSUE_MM[name[:6]]


def _record(module: str, name: str, fields: dict[str, object]) -> object:
    """An object whose pickle names the class `module.name` (as the authors' files do), holding `fields`."""
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
    cls = getattr(sys.modules[module], name, None)
    if cls is None:
        cls = type(name, (), {"__module__": module, "__qualname__": name})
        setattr(sys.modules[module], name, cls)
    record = cls()
    record.__dict__.update(fields)
    return record


def _pickle(record: object, path: Path) -> Path:
    """`record` pickled as the authors' `save` does."""
    with path.open("wb") as stream:
        pickle.dump(record, stream)
    return path


def tdann_resnet18(supervised: bool, seed: int = 0) -> models.ResNet:
    """A random torchvision ResNet-18: a 1000-way classifier (supervised) or fc Identity (SimCLR)."""
    torch.manual_seed(seed)
    net = models.resnet18(weights=None)
    if not supervised:
        net.fc = nn.Identity()
    return net.eval()


def write_vissl(path: Path, net: models.ResNet) -> Path:
    """`net` as VISSL saves a TDANN model: classy_state_dict -> base_model -> model -> trunk (`base_model.` names),
    heads (a supervised model's classifier at 0.clf.0, else SimCLR's projection MLP)."""
    state = net.state_dict()
    trunk = {f"base_model.{k}": v for k, v in state.items() if not k.startswith("fc.")}
    if "fc.weight" in state:
        heads = {"0.clf.0.weight": state["fc.weight"], "0.clf.0.bias": state["fc.bias"]}
    else:
        heads = {"0.0.clf.0.weight": torch.randn(512, 512), "0.1.clf.0.weight": torch.randn(128, 512)}
    torch.save({"phase_idx": 199, "iteration": 500400, "classy_state_dict": {
        "base_model": {"model": {"trunk": trunk, "heads": heads}}}}, path)
    return path


def block_shapes(net: models.ResNet, size: int) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) of each residual block's output (TDANN's spatial layers) for a `size` px image."""
    shapes: dict[str, tuple[int, int, int]] = {}
    hooks = [block.register_forward_hook(lambda m, i, o, n=f"layer{s}.{b}": shapes.__setitem__(n, tuple(o.shape[1:])))
             for s in (1, 2, 3, 4) for b, block in enumerate(getattr(net, f"layer{s}"))]
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return shapes


def write_tdann_positions(directory: Path, shapes: dict[str, tuple[int, int, int]],
                          tissue_mm: Callable[[str], float], version: int | None = 2, seed: int = 0) -> Path:
    """A TDANN positions directory: unit (c, h, w) at its retinotopic cell of the layer's tissue (`tissue_mm`) plus a
    uniform jitter inside the cell, 20 neighbourhoods of 50 units; version.txt unless `version` is None."""
    directory.mkdir(parents=True, exist_ok=True)
    if version is not None:
        (directory / "version.txt").write_text(f"{version}\n")
    rng = np.random.default_rng(seed)
    for name, (c, h, w) in shapes.items():
        cell = tissue_mm(name) / max(h, w)
        _, rows, cols = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
        xy = (np.stack([cols.ravel(), h - 1 - rows.ravel()], axis=1) + rng.uniform(0, 1, (c * h * w, 2))) * cell
        hoods = np.stack([rng.choice(c * h * w, min(50, c * h * w), replace=False) for _ in range(20)])
        _pickle(_record(*TDANN_RECORD, {"name": name, "dims": (c, h, w), "coordinates": xy,
                                        "neighborhood_indices": hoods, "neighborhood_width": 1.626}),
                directory / f"{name}.pkl")
    return directory


def write_topolm(path: Path, n_layer: int = 2, n_embed: int = 16, vocab_size: int = 50304,
                 block_size: int = 64) -> Path:
    """A TopoLM checkpoint (models/train.py's layout): model, model_args (with_resid true), config."""
    from toponets_exp.models.nanogpt import gpt

    torch.manual_seed(0)
    net = gpt(vocab_size=vocab_size, vocab_multiple=1, block_size=block_size, n_layer=n_layer, n_head=2,
              n_embd=n_embed)
    args = {"n_layer": n_layer, "n_head": 2, "n_embed": n_embed, "block_size": block_size, "bias": False,
            "vocab_size": vocab_size, "dropout": 0.0, "alpha": 2.5, "accum": "mean", "head_loss": False,
            "attn_proj": False, "finetune": False, "with_resid": True}
    torch.save({"model": {f"_orig_mod.{k}": v for k, v in net.state_dict().items()}, "model_args": args,
                "iter_num": 500, "config": {"radius": 5, "neighborhoods_per_batch": 5}}, path)
    return path


def write_topolm_positions(directory: Path, n_layer: int = 2, side: int = 4, seed: int = 0) -> Path:
    """TopoLM's position pickles: layer.{i}.{attn,mlp}.pkl, a shuffled side x side sheet of cells, 0/1 masks."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    for name in (f"layer.{i}.{part}" for i in range(n_layer) for part in ("attn", "mlp")):
        cells = torch.Tensor([(x, y) for x in range(side) for y in range(side)])
        cells = cells[torch.randperm(side * side, generator=generator)]
        masks = torch.stack([((cells - cells[k]).abs().max(1).values < 2).to(int) for k in range(4)])
        _pickle(_record(*TOPOLM_RECORD, {"name": name, "coordinates": cells, "neighborhood_indices": masks,
                                         "neighborhoods_per_batch": 5}), directory / f"{name}.pkl")
    return directory


def write_digit_stimuli(directory: Path, per_class: int = 20, size: int = 32) -> Path:
    """scikit-learn's digits as a stimulus folder (one subfolder per digit, the first `per_class` of each, grey PNGs
    upscaled to `size` px)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(10):
        (directory / str(label)).mkdir(parents=True, exist_ok=True)
        for k, image in enumerate(digits.images[digits.target == label][:per_class]):
            pixels = (image / 16.0 * 255).astype(np.uint8)
            Image.fromarray(pixels).resize((size, size), Image.NEAREST).convert("RGB").save(
                directory / str(label) / f"{k:02d}.png")
    return directory


def main() -> None:
    """Write every stand-in under one directory (the README's commands read them)."""
    import argparse

    parser = argparse.ArgumentParser(description="Stand-ins in the published layouts of TDANN and TopoLM")
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=64, help="image side the TDANN positions are made for (px)")
    args = parser.parse_args()
    for seed, kind in enumerate(("simclr", "supervised")):
        (args.out / f"tdann_{kind}").mkdir(parents=True, exist_ok=True)
        write_vissl(args.out / f"tdann_{kind}" / "model_final_checkpoint_phase199.torch",
                    tdann_resnet18(supervised=kind == "supervised", seed=seed))
    write_tdann_positions(args.out / "tdann_positions", block_shapes(tdann_resnet18(False), args.size),
                          tdann_tissue)
    (args.out / "topolm").mkdir(exist_ok=True)
    write_topolm(args.out / "topolm" / "ckpt.pt")
    write_topolm_positions(args.out / "topolm" / "positions")
    write_digit_stimuli(args.out / "digits", size=args.size)
    log.info("stand-ins written to %s", args.out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
