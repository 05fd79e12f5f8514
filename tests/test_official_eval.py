"""Official TopoNets checkpoints, evaluated with one command: stand-ins saved in the official formats from 'GPU'.

Each stand-in has the official file's layout (a bare ResNet state dict; torchvision's reference-script dict for
ViT-B/32; nanoGPT's train.py dict with `_orig_mod.` keys and model_args) and CUDA-tagged storages, as a file saved
on a GPU machine has; `run.py task=eval model=<family> ckpt_path=<file>` must read the architecture from the file.
"""

import argparse
import contextlib
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch import serialization
from torchvision.models.vision_transformer import VisionTransformer

from cli import run_cli
from toponets_exp.models import gpt, resnet18


@contextlib.contextmanager
def saving_as_from_gpu():
    """torch.save tags every CPU storage 'cuda:0', as on a GPU machine (torch's own location-tag registry)."""
    def tag(obj):
        return "cuda:0" if getattr(obj, "device", None) is not None and obj.device.type == "cpu" else None

    serialization.register_package(0, tag, lambda obj, location: None)
    try:
        yield
    finally:
        serialization._package_registry[:] = [e for e in serialization._package_registry if e[1] is not tag]


def save_from_gpu(obj, path):
    with saving_as_from_gpu():
        torch.save(obj, path)
    with zipfile.ZipFile(path) as archive:
        pickle = next(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
    assert b"cuda:0" in pickle
    with pytest.raises(RuntimeError, match="CUDA"):  # truly GPU-tagged: a plain load on this CPU machine fails
        torch.load(path, weights_only=True)
    return path


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    root = tmp_path_factory.mktemp("floc")
    rng = np.random.default_rng(0)
    for category in ("faces", "places"):
        (root / category).mkdir()
        for i in range(4):
            pixels = rng.integers(0, 256, size=(96, 80, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / category / f"{i}.png")
    return root


def report_of(out):
    return json.loads((out / "report.json").read_text())


@pytest.mark.slow
def test_official_resnet18_file_with_stimuli_and_no_training_data(tmp_path, stimuli):
    torch.manual_seed(0)
    path = save_from_gpu(resnet18(num_classes=1000, blurpool=True).state_dict(), tmp_path / "all_topo_tau_10.0.pt")
    out = tmp_path / "eval"
    proc = run_cli("task=eval", "model=resnet18", f"ckpt_path={path}", f"eval.stimuli={stimuli}",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = report_of(out)
    assert report["architecture_from_checkpoint"] == {"num_classes": 1000, "small_input": False, "blurpool": True}
    assert report["topo_weight"] == 10.0  # the τ of the file's name, not the config's topo.weight (5)
    assert report["categories"] == ["faces", "places"] and report["n_stimuli"] == 8
    assert "efficiency" in report["skipped"] and "1000 classes" in report["skipped"]["efficiency"]
    assert "efficiency" not in report
    assert len(report["layers"]) == 16
    for entry in report["layers"].values():
        for sel in entry["selectivity"].values():
            assert sel["tdann_smoothness"] is None or 0.0 <= sel["tdann_smoothness"] <= 1.0
            assert "morans_i" in sel


@pytest.mark.slow
def test_official_vit_b_32_file(tmp_path, stimuli):
    torch.manual_seed(0)
    net = VisionTransformer(image_size=224, patch_size=32, num_layers=2, num_heads=12, hidden_dim=96, mlp_dim=192,
                            num_classes=1000)
    content = {"model": net.state_dict(), "args": argparse.Namespace(model="vit_b_32", lr=0.003), "epoch": 299}
    path = save_from_gpu(content, tmp_path / "vit_b_32_topo.pth")
    out = tmp_path / "eval"
    proc = run_cli("task=eval", "model=vit_b_32", f"ckpt_path={path}", f"eval.stimuli={stimuli}",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = report_of(out)
    assert report["architecture_from_checkpoint"] == {"num_classes": 1000, "patch_size": 32, "image_size": 224,
                                                      "hidden_dim": 96, "num_layers": 2, "mlp_dim": 192}
    assert set(report["layers"]) == {"encoder.layers.encoder_layer_0.mlp.0", "encoder.layers.encoder_layer_1.mlp.0"}
    assert "efficiency" in report["skipped"]


@pytest.mark.slow
def test_official_nanogpt_file_with_the_embedded_sentences(tmp_path):
    torch.manual_seed(0)
    net = gpt(vocab_size=50304, block_size=1024, n_layer=2, n_head=4, n_embd=64)
    content = {"model": {f"_orig_mod.{k}": v for k, v in net.state_dict().items()},
               "model_args": {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 1024, "bias": False,
                              "vocab_size": 50304, "dropout": 0.0},
               "iter_num": 5000, "best_val_loss": 3.1, "config": {"batch_size": 12}}
    path = save_from_gpu(content, tmp_path / "nanogpt_topo_tau_3.pt")
    out = tmp_path / "eval"
    proc = run_cli("task=eval", "model=nanogpt", f"ckpt_path={path}", "eval.n_sentences=40", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = report_of(out)
    assert report["kind"] == "language" and report["tokenizer"] == "BPETokenizer (50257 tokens)"
    assert report["topo_weight"] == 3.0
    assert report["architecture_from_checkpoint"]["n_head"] == 4 and report["architecture_from_checkpoint"][
        "block_size"] == 1024
    assert set(report["skipped"]) == {"val_loss", "efficiency"} and "val_loss" not in report
    for entry in report["layers"].values():
        assert 0.0 <= entry["language_selectivity"]["tdann_smoothness"] <= 1.0
        patches = entry["language_selectivity"]["patches"]
        assert patches == len(entry["language_selectivity"]["patch_areas"])
    assert report["aggregate"]["patches_maps_used"] == len(report["layers"])


def test_a_file_of_another_family_is_one_clear_line(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "resnet.pt"
    torch.save(resnet18(num_classes=10, small_input=True).state_dict(), path)
    proc = run_cli("task=eval", "model=vit_b_32", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert "lacks 'conv_proj.weight'" in proc.stdout and "does model= name the architecture" in proc.stdout
    assert "Traceback" not in proc.stdout
