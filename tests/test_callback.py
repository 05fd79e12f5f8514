"""TopoLossCallback makes training equivalent to minimising task_loss + TopoLoss."""

import copy
import csv
from functools import partial

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from toponets_exp.errors import ConfigError
from toponets_exp.lit import ImageClassifier, ReleaseProcessGroup
from toponets_exp.topo import LinearWarmup, TopoLoss, select_layers
from toponets_exp.topo.selection import weight_layers

from topo_callbacks import topo_callback

# output sheets of the convs and fc1; fc1's input sheet (16 features: 4x4) and head's bias sheet (10: 2x5), as the
# official topoloss package's LaplacianPyramidOnInput and LaplacianPyramidOnBias; the wiring cost of conv2 (inputs
# on conv1's sheet) and fc1 (inputs on conv2's)
LAYERS = ["conv*", {"pattern": "fc1", "factor": [1.5, 2.0], "weight": 3.0},
          {"pattern": "fc1", "side": "input", "factor": 2.0, "weight": 2.0},
          {"pattern": "head", "param": "bias", "factor": [1.0, 2.5]},
          {"pattern": "conv*", "loss": "wiring", "weight": 20.0}, {"pattern": "fc1", "loss": "wiring"}]
OPTIM = {"optimizer": partial(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4)}


class TinyNet(nn.Module):
    """Two convs (16 units: 4x4 sheets) and a hidden linear layer (12 units: 3x4) before a 10-way head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc1 = nn.Linear(16, 12)
        self.head = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(torch.relu(self.fc1(x.mean((2, 3)))))


class TopoInLoss(ImageClassifier):
    """Reference: TopoLoss added to the task loss inside the training step (float32, autocast off)."""

    def __init__(self, net: nn.Module, weight: float, task_scale: float = 1.0) -> None:
        super().__init__(net, 10, **OPTIM)
        self.topo = TopoLoss(weight_layers(select_layers(net, LAYERS, 2.0, weight)))
        self.task_scale = task_scale

    def training_step(self, batch, batch_idx):
        loss = self.task_scale * super().training_step(batch, batch_idx)
        with torch.autocast(self.device.type, enabled=False):
            total, _ = self.topo()
        return loss + total


class ScaledTask(ImageClassifier):
    """The task loss times a constant (0 isolates the TopoLoss gradient)."""

    def __init__(self, net: nn.Module, task_scale: float) -> None:
        super().__init__(net, 10, **OPTIM)
        self.task_scale = task_scale

    def training_step(self, batch, batch_idx):
        return self.task_scale * super().training_step(batch, batch_idx)


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(48, 3, 8, 8, generator=g), torch.randint(0, 10, (48,), generator=g))
    return DataLoader(data, batch_size=8, shuffle=False)


def fit(module: L.LightningModule, callbacks=(), steps: int = 4, devices: int = 1, accelerator: str = "cpu",
        **trainer_kwargs) -> dict[str, torch.Tensor]:
    trainer = L.Trainer(max_steps=steps, accelerator=accelerator, devices=devices, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[*callbacks, ReleaseProcessGroup()], **trainer_kwargs)
    trainer.fit(module, train_dataloaders=loader())
    return {k: v.detach().cpu().clone() for k, v in module.net.state_dict().items()}


def assert_same(a: dict, b: dict, atol: float) -> None:
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=lambda m, k=key: f"{k}: {m}")


def nets() -> tuple[TinyNet, TinyNet]:
    torch.manual_seed(0)
    net = TinyNet()
    return net, copy.deepcopy(net)


@pytest.mark.parametrize("trainer_kwargs", [
    {},
    {"accumulate_grad_batches": 3},
    {"gradient_clip_val": 0.05},  # clipping acts on task + topo gradients alike
])
def test_callback_equals_topo_in_loss(trainer_kwargs):
    net_a, net_b = nets()
    start = copy.deepcopy(net_a.state_dict())
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, LAYERS, weight=5.0, factor=2.0)],
               **trainer_kwargs)
    ref = fit(TopoInLoss(net_b, 5.0), **trainer_kwargs)
    assert_same(ours, ref, atol=1e-6)
    assert not torch.allclose(ours["conv1.weight"], start["conv1.weight"])  # it trained


def test_callback_changes_training_versus_baseline():
    net_a, net_b = nets()
    topo = fit(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, LAYERS, weight=5.0, factor=2.0)])
    base = fit(ImageClassifier(net_b, 10, **OPTIM), [topo_callback(net_b, ["conv*", "fc1"], weight=0.0, factor=2.0)])
    assert (topo["conv1.weight"] - base["conv1.weight"]).abs().max() > 1e-3


def test_tau_zero_does_no_topo_compute_in_training(monkeypatch):
    """τ=0 on every layer: the training step never evaluates TopoLoss and training equals plain training."""
    calls = []
    for method in ("layer_losses", "accumulate_grad", "total"):
        original = getattr(TopoLoss, method)
        monkeypatch.setattr(TopoLoss, method,
                            lambda self, *a, _f=original, **k: calls.append(1) or _f(self, *a, **k))
    net_a, net_b = nets()
    base = fit(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, ["conv*", "fc1"], weight=0.0, factor=2.0)])
    assert calls == []
    assert_same(base, fit(ImageClassifier(net_b, 10, **OPTIM)), atol=0)


def test_bf16_mixed_topo_term_is_float32_exact():
    """With the task loss switched off, bf16-mixed training must follow the float32 TopoLoss gradient exactly:
    the topo term is computed in float32 on the float32 weights, outside autocast."""
    net_a, net_b = nets()
    cb = lambda net: topo_callback(net, LAYERS, weight=5.0, factor=2.0)  # noqa: E731
    mixed = fit(ScaledTask(net_a, 0.0), [cb(net_a)], precision="bf16-mixed")
    full = fit(ScaledTask(net_b, 0.0), [cb(net_b)], precision="32-true")
    assert_same(mixed, full, atol=1e-6)


def test_bf16_mixed_equals_reference_with_float32_topo():
    """Full bf16-mixed training against the reference that adds the float32 TopoLoss to the autocast task loss:
    both runs see the same bf16 task gradients, so they agree to float32 round-off."""
    net_a, net_b = nets()
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, LAYERS, weight=5.0, factor=2.0)],
               precision="bf16-mixed")
    ref = fit(TopoInLoss(net_b, 5.0), precision="bf16-mixed")
    assert_same(ours, ref, atol=1e-5)


def test_schedule_state_survives_checkpoint(tmp_path):
    net, _ = nets()
    cb = topo_callback(net, LAYERS, weight=5.0, factor=2.0, schedule=LinearWarmup(steps=10))
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[cb])
    trainer.fit(ImageClassifier(net, 10, **OPTIM), train_dataloaders=loader())
    assert cb.schedule.step_count == 3
    path = tmp_path / "three.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["callbacks"]["TopoLossCallback"]
    assert saved["schedule"]["step_count"] == 3

    other = TinyNet()
    resumed = topo_callback(other, LAYERS, weight=5.0, factor=2.0, schedule=LinearWarmup(steps=10))
    assert resumed.schedule.value == 0.0
    trainer = L.Trainer(max_steps=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[resumed])
    trainer.fit(ImageClassifier(other, 10, **OPTIM), train_dataloaders=loader(), ckpt_path=path)
    assert resumed.schedule.step_count == 5
    assert resumed.schedule.value == pytest.approx(0.5)


def test_logs_per_layer_and_total_every_n_steps(tmp_path):
    net, _ = nets()
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="", version="")
    cb = topo_callback(net, LAYERS, weight=5.0, factor=2.0)
    trainer = L.Trainer(max_steps=6, logger=logger, log_every_n_steps=2, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    trainer.fit(ImageClassifier(net, 10, **OPTIM), train_dataloaders=loader())
    rows = [r for r in csv.DictReader(open(tmp_path / "metrics.csv")) if r.get("topo/total")]
    assert [int(r["step"]) for r in rows] == [0, 2, 4]
    for r in rows:
        names = ("conv1", "conv2", "fc1", "fc1[input]", "head[bias]", "conv2[wiring]", "fc1[wiring]")
        per_layer = [float(r[f"topo/{n}"]) for n in names]
        taus = (5.0, 5.0, 3.0, 2.0, 5.0, 20.0, 5.0)
        expected = sum(t * v for t, v in zip(taus, per_layer)) / 7  # mean of τ_l · loss_l
        assert float(r["topo/total"]) == pytest.approx(expected, rel=1e-5)


def test_sharded_strategies_are_refused_ddp_is_not() -> None:
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy, ModelParallelStrategy

    from toponets_exp.topo.callback import check_exact_strategy

    for sharded in (FSDPStrategy(), ModelParallelStrategy()):
        with pytest.raises(ConfigError, match=f"trainer.strategy={type(sharded).__name__} shards the parameters"):
            check_exact_strategy(sharded)
    check_exact_strategy(DDPStrategy())


def channels_last_nets() -> tuple[TinyNet, TinyNet]:
    net_a, net_b = nets()
    return net_a.to(memory_format=torch.channels_last), net_b.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("trainer_kwargs", [{}, {"accumulate_grad_batches": 3}, {"precision": "bf16-mixed"}])
def test_channels_last_weights_get_the_topo_gradient(trainer_kwargs):
    """With NHWC conv weights the gradient's (units, fan-in) matrix is a copy: the update must reach .grad."""
    net_a, net_b = channels_last_nets()
    assert net_a.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, LAYERS, weight=5.0, factor=2.0)],
               **trainer_kwargs)
    ref = fit(TopoInLoss(net_b, 5.0), **trainer_kwargs)
    assert_same(ours, ref, atol=1e-5)
    only_topo, _ = channels_last_nets()
    start = only_topo.conv2.weight.detach().clone()
    moved = fit(ScaledTask(only_topo, 0.0), [topo_callback(only_topo, LAYERS, weight=5.0, factor=2.0)],
                **trainer_kwargs)
    assert (moved["conv2.weight"] - start).abs().max() > 1e-4  # the topo gradient alone moves the weights


def test_frozen_layers_are_skipped_with_one_warning(caplog):
    net_a, net_b = nets()
    for net in (net_a, net_b):
        net.conv2.requires_grad_(False)
    with caplog.at_level("WARNING"):
        cb = topo_callback(net_a, LAYERS, weight=5.0, factor=2.0)
        ours = fit(ImageClassifier(net_a, 10, **OPTIM), [cb])
    assert [r.message for r in caplog.records if "frozen" in r.message] == [
        "TopoLoss skips 2 frozen layer(s) (requires_grad=False), left out of its mean: conv2, conv2[wiring]"]
    assert [layer.key for layer in cb.loss.layers] == ["conv1", "fc1", "fc1[input]", "head[bias]", "fc1[wiring]"]
    assert net_a.conv2.weight.grad is None

    class Reference(TopoInLoss):  # TopoLoss of the trainable layers only, in the loss
        def __init__(self, net):
            super().__init__(net, 5.0)
            self.topo = TopoLoss([l for l in weight_layers(select_layers(net, LAYERS, 2.0, 5.0))
                                  if l.param.requires_grad])

    assert_same(ours, fit(Reference(net_b)), atol=1e-6)


def test_topoloss_never_trains_a_frozen_parameter_whatever_the_entry_point():
    """TopoLoss used directly (not through the callback) leaves a frozen parameter without a gradient, in place or
    into buffers, and gives the trainable layers the gradient they get with the frozen one unselected."""
    net, ref = nets()
    net.conv2.requires_grad_(False)
    loss = TopoLoss(weight_layers(select_layers(net, LAYERS, 2.0, 5.0)))
    total, per_layer = loss.accumulate_grad()
    assert net.conv2.weight.grad is None
    assert set(per_layer) == {"conv1", "conv2", "fc1", "fc1[input]", "head[bias]", "conv2[wiring]", "fc1[wiring]"}
    buffers = [torch.zeros_like(layer.param) for layer in loss.layers]
    loss.accumulate_grad(into=buffers)
    assert not buffers[1].any() and buffers[0].any()
    TopoLoss(weight_layers(select_layers(ref, LAYERS, 2.0, 5.0))).accumulate_grad()
    for name in ("conv1.weight", "fc1.weight", "head.bias"):
        assert torch.equal(net.get_parameter(name).grad, ref.get_parameter(name).grad)


def test_only_frozen_layers_is_a_config_error():

    net, _ = nets()
    net.requires_grad_(False)
    with pytest.raises(ConfigError, match="selects only frozen layers"):
        topo_callback(net, ["conv*"], weight=1.0, factor=2.0)


def test_non_finite_weights_stop_training_naming_layer_and_step():
    net, _ = nets()

    class PoisonAtStep2(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 2:
                with torch.no_grad():
                    pl_module.net.fc1.weight[0, 0] = float("nan")

    nan = r"TopoLoss is nan at optimizer step 2: layer\(s\) fc1, fc1\[input\], fc1\[wiring\] have"  # all of fc1
    with pytest.raises(FloatingPointError, match=nan):
        fit(ScaledTask(net, 0.0), [PoisonAtStep2(), topo_callback(net, LAYERS, weight=5.0, factor=2.0)])


@pytest.mark.parametrize("overlap", [False, True])
def test_fp16_grad_scaler_skipped_steps_add_nothing_and_keep_the_schedule(overlap):
    """16-mixed with a real GradScaler (on CPU): a step whose task gradient overflows is skipped by the scaler;
    the topo term must not be added and the τ schedule must not advance. Other steps match the reference."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    class OverflowAtStep1(ImageClassifier):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * (float("inf") if self.trainer.global_step == 1 else 1.0)

    def scaler_plugin():
        return MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu", init_scale=2.0 ** 8))

    net_a, net_b = nets()
    cb = topo_callback(net_a, LAYERS, weight=5.0, factor=2.0, overlap=overlap)
    ours = fit(OverflowAtStep1(net_a, 10, **OPTIM), [cb], steps=4, plugins=[scaler_plugin()])
    assert cb.schedule.step_count == 3  # 4 optimizer steps, one skipped

    class ReferenceOverflow(TopoInLoss):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            return loss * (float("inf") if self.trainer.global_step == 1 else 1.0)

    ref = fit(ReferenceOverflow(net_b, 5.0), steps=4, plugins=[scaler_plugin()])
    assert_same(ours, ref, atol=1e-4)


@pytest.mark.parametrize("trainer_kwargs", [{}, {"accumulate_grad_batches": 3}, {"precision": "bf16-mixed"}])
def test_overlap_equals_the_synchronous_hook(trainer_kwargs, monkeypatch):
    """topo.overlap computes the same gradient in a worker thread during forward/backward: same weights after
    training (to float32 rounding), one concurrent gradient per optimizer step, the worker stopped at the end."""
    from toponets_exp.topo.overlap import ConcurrentTopoGrad

    added = []
    original = ConcurrentTopoGrad.add_to_grads
    monkeypatch.setattr(ConcurrentTopoGrad, "add_to_grads", lambda self: added.append(1) or original(self))
    net_a, net_b = nets()
    schedule = lambda: LinearWarmup(steps=3)  # noqa: E731 - the multiplier changes every step
    cb = topo_callback(net_a, LAYERS, weight=5.0, factor=2.0, schedule=schedule(), overlap=True)
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [cb], **trainer_kwargs)
    sync = fit(ImageClassifier(net_b, 10, **OPTIM),
               [topo_callback(net_b, LAYERS, weight=5.0, factor=2.0, schedule=schedule())], **trainer_kwargs)
    assert_same(ours, sync, atol=1e-6)
    assert len(added) == 3  # 4 optimizer steps; LinearWarmup's first multiplier is 0: nothing launched for it
    assert cb.concurrent._executor is None and not cb.concurrent.pending


def test_overlap_must_be_a_boolean():
    with pytest.raises(ConfigError, match="topo.overlap='yes' must be true or false"):
        topo_callback(nets()[0], LAYERS, weight=5.0, factor=2.0, overlap="yes")
