"""On a GPU (`pytest -m gpu`; skipped without CUDA): the callback's exactness under fp32, bf16-mixed and 16-mixed,
topo.overlap on a side stream, channels_last ResNet-18, the spatial loss, task=eval, the prepared input path and a
one-process NCCL DDP run.

TOPONETS_TEST_DEVICE=cpu runs the same checks on the CPU (gloo, a worker thread, a CPU GradScaler): the smoke run of
benchmarks/gpu_check.sh --device cpu, so the tests themselves stay tested where no GPU is.
"""

import json
import os
import shutil

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torchvision.models import resnet18

import test_callback
from cli import FAST_EVAL, TINY, cli_env, run_cli
from test_callback import LAYERS, OPTIM, TopoInLoss, assert_same, fit, nets
from test_data_prepared import smooth_image
from test_spatial_callback import SpatialInLoss, spatial_callback
from topo_callbacks import topo_callback
from toponets_exp.lit import ImageClassifier
from toponets_exp.topo import LinearWarmup, TopoLoss, select_layers

DEVICE = os.environ.get("TOPONETS_TEST_DEVICE", "cuda")
ACCELERATOR = "gpu" if DEVICE == "cuda" else "cpu"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                                  reason="needs CUDA (TOPONETS_TEST_DEVICE=cpu runs it on the CPU)")]
# Atol of the callback against TopoLoss in the loss after 4 steps: cuDNN may pick other (TF32, non-deterministic)
# convolution algorithms in the two runs; fp16's task gradient is rounded before the float32 topo term is added.
PRECISIONS = {"32-true": 1e-5, "bf16-mixed": 1e-5, "16-mixed": 1e-4}


def precision_kwargs(precision: str) -> dict:
    """Trainer arguments for `precision` on DEVICE (fp16 on the CPU needs an explicit GradScaler plugin)."""
    if precision == "16-mixed" and DEVICE == "cpu":
        return {"plugins": [MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu", init_scale=2.0 ** 8))]}
    return {"precision": precision}


def on_device(module, callbacks=(), **kwargs):
    """`test_callback.fit` on DEVICE (parameters returned on the CPU)."""
    return fit(module, callbacks, accelerator=ACCELERATOR, **kwargs)


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_callback_equals_topo_in_loss(precision):
    net_a, net_b = nets()
    ours = on_device(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, LAYERS, weight=5.0, factor=2.0)],
                     **precision_kwargs(precision))
    ref = on_device(TopoInLoss(net_b, 5.0), **precision_kwargs(precision))
    assert_same(ours, ref, atol=PRECISIONS[precision])
    plain, _ = nets()
    untouched = on_device(ImageClassifier(plain, 10, **OPTIM), **precision_kwargs(precision))
    assert (ours["conv1.weight"] - untouched["conv1.weight"]).abs().max() > 100 * PRECISIONS[precision]


def test_overlap_on_a_side_stream_equals_the_synchronous_hook():
    net_a, net_b = nets()
    cb = topo_callback(net_a, LAYERS, weight=5.0, factor=2.0, schedule=LinearWarmup(steps=3), overlap=True)
    ours = on_device(ImageClassifier(net_a, 10, **OPTIM), [cb], precision="bf16-mixed")
    sync = on_device(ImageClassifier(net_b, 10, **OPTIM),
                     [topo_callback(net_b, LAYERS, weight=5.0, factor=2.0, schedule=LinearWarmup(steps=3))],
                     precision="bf16-mixed")
    assert_same(ours, sync, atol=1e-5)
    assert (cb.concurrent._stream is not None) == (DEVICE == "cuda")  # a side CUDA stream, else a worker thread


class ResNetTopoInLoss(ImageClassifier):
    """Reference: TopoLoss on every block conv of a ResNet-18, added to the task loss (float32, autocast off)."""

    def __init__(self, net, weight: float) -> None:
        super().__init__(net, 10, **OPTIM)
        self.topo = TopoLoss(select_layers(net, ["layer*.*.conv*"], 3.0, weight))

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        with torch.autocast(self.device.type, enabled=False):
            total, _ = self.topo()
        return loss + total


def test_channels_last_resnet18_bf16_equals_topo_in_loss(monkeypatch):
    torch.manual_seed(0)
    net_a = resnet18(num_classes=10).to(memory_format=torch.channels_last)
    net_b = resnet18(num_classes=10).to(memory_format=torch.channels_last)
    net_b.load_state_dict(net_a.state_dict())
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 32, 32, generator=g),
                                          torch.randint(0, 10, (32,), generator=g))
    monkeypatch.setattr(test_callback, "loader", lambda: torch.utils.data.DataLoader(data, batch_size=8))
    ours = on_device(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, ["layer*.*.conv*"], weight=5.0)],
                     steps=3, precision="bf16-mixed")
    ref = on_device(ResNetTopoInLoss(net_b, 5.0), steps=3, precision="bf16-mixed")
    assert_same(ours, ref, atol=1e-4)


def test_spatial_correlation_loss_equals_the_explicit_loss():
    net_a, net_b = nets()
    ours = on_device(ImageClassifier(net_a, 10, **OPTIM), [spatial_callback(net_a)])
    ref = on_device(SpatialInLoss(net_b))
    assert_same(ours, ref, atol=1e-5)


@pytest.mark.slow
def test_task_eval_on_the_device_equals_the_cpu(tiny_checkpoint, tmp_path):
    reports = {}
    for device in dict.fromkeys([DEVICE, "cpu"]):
        out = tmp_path / device
        proc = run_cli("task=eval", f"ckpt_path={tiny_checkpoint}", f"eval.device={device}", "data.image_size=8",
                       *FAST_EVAL, f"hydra.run.dir={out}", env=cli_env(NVIDIA_TF32_OVERRIDE="0"))  # float32 maths
        assert proc.returncode == 0, proc.stdout[-3000:]
        reports[device] = json.loads((out / "report.json").read_text())["aggregate"]
    for key, value in reports[DEVICE].items():
        assert value == pytest.approx(reports["cpu"][key], rel=1e-3, abs=1e-4), key


@pytest.mark.slow
def test_prepared_input_feeds_training_on_the_device(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4)):
        for name in "ab":
            (tmp_path / "src" / split / name).mkdir(parents=True)
            for i in range(n):
                smooth_image(rng, 40, 30).save(tmp_path / "src" / split / name / f"{i}.jpg", quality=90)
    data = ["data=imagenet", f"data.root={tmp_path / 'src'}", f"data.prepared_dir={tmp_path / 'prepared'}",
            "data.num_classes=2", "data.image_size=32", "data.prepared_max_side=48", "data.num_workers=0"]
    proc = run_cli("task=prepare", *data, f"hydra.run.dir={tmp_path / 'prepare'}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    shutil.rmtree(tmp_path / "src")  # the run reads the prepared chunks alone
    hardware = "hardware=gpu" if DEVICE == "cuda" else "hardware=cpu"
    tiny = [arg for arg in TINY if not arg.startswith(("data.image_size=", "data.batch_size="))]
    proc = run_cli(hardware, *data[:1], *data[2:], *tiny, "data.batch_size=4", "data.pin_memory=false",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["optimizer_steps"] == 2 and 0 <= summary["test"]["acc"] <= 1


@pytest.mark.slow
def test_one_process_ddp_run(tmp_path):
    hardware = (["hardware=ddp", "trainer.devices=1", "data.num_workers=0"] if DEVICE == "cuda"
                else ["hardware=ddp_cpu", "trainer.devices=1"])
    proc = run_cli(*hardware, *TINY, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"distributed_backend={'nccl' if DEVICE == 'cuda' else 'gloo'}" in proc.stdout
    assert json.loads((tmp_path / "summary.json").read_text())["optimizer_steps"] == 2
