"""The spatial correlation loss through TopoLossCallback's hooks equals adding it to the task loss explicitly."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

import test_callback
from test_callback import OPTIM, assert_same, fit, nets
from test_ddp import RANKS, dataset
from topo_callbacks import topo_callback
from toponets_exp.errors import ConfigError
from toponets_exp.lit import ImageClassifier
from toponets_exp.topo import LinearWarmup, TopoLoss, TopoLossCallback, select_layers
from toponets_exp.topo.spatial_hooks import output_loss, step_neighbourhoods

SPATIAL = {"neighbourhoods": 3, "radius": 1.0, "responses": "locations"}
TOPOLM_FORMS = {**SPATIAL, "distance": "chebyshev", "scale": 1.0}  # the norm and scale options of the loss
LAYERS = ["conv*", {"pattern": "fc1", "weight": 3.0}]  # conv1/conv2 4x4 sheets, fc1 3x4; radius 1: 3x3 windows
SEED = 7


def spatial_callback(net, spatial=SPATIAL, **kwargs) -> TopoLossCallback:
    return topo_callback(net, LAYERS, weight=2.0, factor=2.0, loss="spatial_correlation", spatial=spatial, seed=SEED,
                         **kwargs)


class SpatialInLoss(ImageClassifier):
    """Reference: the same layers, neighbourhoods and τ, the spatial loss added to the task loss in training_step."""

    def __init__(self, net, layer_cfg=LAYERS, weight: float = 2.0, schedule=None, spatial=SPATIAL) -> None:
        super().__init__(net, 10, **OPTIM)
        self.layer_cfg, self.weight, self.schedule, self.spatial = layer_cfg, weight, schedule, spatial
        self.outputs = {}

    def setup(self, stage: str) -> None:  # hooks made in each process (DDP spawn pickles the module)
        self.layers = select_layers(self.net, self.layer_cfg, 2.0, self.weight, "spatial_correlation")
        for layer in self.layers:
            layer.module.register_forward_hook(lambda m, i, o, name=layer.name: self.outputs.__setitem__(name, o))

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        multiplier = self.schedule.multiplier(self.trainer.global_step) if self.schedule else 1.0
        terms = []
        for index, layer in enumerate(self.layers):
            hoods = step_neighbourhoods(layer, SEED, self.trainer.global_step, batch_idx, index,
                                        SPATIAL["neighbourhoods"], SPATIAL["radius"])
            value = output_loss(self.outputs[layer.name], layer, hoods, "locations", None,
                                self.spatial.get("distance", "euclidean"), self.spatial.get("scale", 0.5))
            terms.append(multiplier * layer.weight * value)
        return loss + torch.stack(terms).mean()


@pytest.mark.parametrize("trainer_kwargs, steps, atol, spatial", [
    ({}, 4, 1e-6, SPATIAL),
    ({"accumulate_grad_batches": 3}, 4, 1e-6, SPATIAL),
    # bf16 activations: the hook scales ∂L/∂output by τ/layers after the loss's backward, autograd before it, so a
    # few gradients round to the neighbouring bf16 value; the loss's correlations amplify that over later steps
    ({"precision": "bf16-mixed"}, 1, 1e-3, SPATIAL),
    ({}, 4, 1e-6, TOPOLM_FORMS),
    ({"accumulate_grad_batches": 3}, 4, 1e-6, TOPOLM_FORMS),
])
def test_hooked_spatial_loss_equals_the_explicit_loss(trainer_kwargs, steps, atol, spatial):
    net_a, net_b = nets()
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [spatial_callback(net_a, spatial)], steps=steps,
               **trainer_kwargs)
    ref = fit(SpatialInLoss(net_b, spatial=spatial), steps=steps, **trainer_kwargs)
    assert_same(ours, ref, atol=atol)
    plain_a, _ = nets()
    plain = fit(ImageClassifier(plain_a, 10, **OPTIM), steps=steps, **trainer_kwargs)
    assert (ours["conv1.weight"] - plain["conv1.weight"]).abs().max() > 5 * atol  # the loss did act


def test_fp16_grad_scaler_scale_is_applied_to_the_spatial_gradient():
    """16-mixed: the backward's loss is multiplied by the GradScaler's scale, so the added gradient must be too."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    def plugin():
        return MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu", init_scale=2.0 ** 10))

    net_a, net_b = nets()
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [spatial_callback(net_a)], steps=1, plugins=[plugin()])
    ref = fit(SpatialInLoss(net_b), steps=1, plugins=[plugin()])
    assert_same(ours, ref, atol=2e-4)  # fp16 activations (10-bit mantissa)
    unscaled_a, _ = nets()  # were the 2^10 scale missing, the spatial term would be 1024 times too small
    spatial_off = fit(ImageClassifier(unscaled_a, 10, **OPTIM), steps=1, plugins=[plugin()])
    assert (ours["conv1.weight"] - spatial_off["conv1.weight"]).abs().max() > 1e-3


def test_schedule_and_combination_with_topoloss():
    """TopoLoss on the convs plus the spatial loss on fc1 with its own τ and schedule, from one layer list."""
    layers = ["conv*", {"pattern": "fc1", "loss": "spatial_correlation", "weight": 4.0,
                        "schedule": LinearWarmup(steps=2)}]
    net_a, net_b = nets()
    cb = topo_callback(net_a, layers, weight=5.0, factor=2.0, spatial=SPATIAL, seed=SEED)
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [cb])
    assert [l.name for l in cb.loss.layers] == ["conv1", "conv2"] and [l.name for l in cb.spatial.layers] == ["fc1"]
    assert [l.name for l in cb.layers] == ["conv1", "conv2", "fc1"]  # all measured (fc1 with TopoLoss τ 0)

    class Both(SpatialInLoss):
        def __init__(self, net):
            super().__init__(net, [{"pattern": "fc1", "weight": 4.0}], schedule=LinearWarmup(steps=2))
            self.topo = TopoLoss(select_layers(net, ["conv*"], 2.0, 5.0))

        def training_step(self, batch, batch_idx):
            with torch.autocast("cpu", enabled=False):
                total, _ = self.topo()
            return super().training_step(batch, batch_idx) + total

    ref = fit(Both(net_b))
    assert_same(ours, ref, atol=1e-5)
    assert cb.schedules[1].step_count == 4


def test_no_hooks_at_tau_zero_and_none_outside_training(monkeypatch):
    calls = []
    monkeypatch.setattr("toponets_exp.topo.spatial_hooks.output_loss", lambda *a: calls.append(1))
    net_a, net_b = nets()
    off = topo_callback(net_a, ["conv*", "fc1"], weight=0.0, factor=2.0, loss="spatial_correlation", spatial=SPATIAL)
    base = fit(ImageClassifier(net_a, 10, **OPTIM), [off])
    assert calls == [] and not any(m._forward_hooks for m in net_a.modules())
    assert_same(base, fit(ImageClassifier(net_b, 10, **OPTIM)), atol=0)
    monkeypatch.undo()

    net, _ = nets()
    cb = spatial_callback(net)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    module = ImageClassifier(net, 10, **OPTIM)
    trainer.fit(module, train_dataloaders=test_callback.loader(), val_dataloaders=test_callback.loader())
    assert not any(m._forward_hooks for m in net.modules())  # removed after every training batch
    trainer.test(module, dataloaders=test_callback.loader(), verbose=False)
    assert not any(m._forward_hooks for m in net.modules())


@pytest.mark.parametrize("spatial, match", [
    ({"radius": 2.0}, r"radius=2.0 needs a 5x5 window, larger than the 4x4 sheet"),
    ({"radius": 0.5}, r"radius=0.5 gives a neighbourhood of fewer than 3 units"),
    ({"responses": "mean"}, r"topo.spatial.responses='mean' is not supported; use one of locations, pooled"),
    ({"width": 3}, r"topo.spatial has unknown key\(s\) width"),
])
def test_bad_spatial_config_is_a_clear_error(spatial, match):
    net, _ = nets()
    with pytest.raises(ConfigError, match=match):
        topo_callback(net, LAYERS, weight=1.0, factor=2.0, loss="spatial_correlation",
                      spatial={**SPATIAL, **spatial})


def test_a_layer_whose_output_has_no_unit_axis_is_a_clear_error():
    class Pairs(torch.nn.Module):
        """A layer returning a tuple (like an LSTM), addressed through `param`."""

        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(16, 4))

        def forward(self, x):
            return x @ self.weight.T, x

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pairs, self.head = Pairs(), torch.nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.pairs(x.mean((1, 2, 3))[:, None].expand(-1, 4))[0])

    net = Net()
    cb = topo_callback(net, [{"pattern": "pairs", "param": "weight"}], weight=1.0, factor=2.0,
                       loss="spatial_correlation", spatial=SPATIAL)
    with pytest.raises(ConfigError, match=r"'pairs' returned tuple, which has no unit axis for spatial_correlation"):
        fit(ImageClassifier(net, 10, **OPTIM), [cb])


@pytest.mark.slow
def test_ddp_two_processes_hooked_equals_explicit(monkeypatch):
    """2-process DDP (gloo): each rank's spatial loss on its local batch, DDP's gradient mean, in both variants."""
    monkeypatch.setattr(test_callback, "loader", lambda: DataLoader(dataset(), batch_size=4))
    net_a, net_b = nets()
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [spatial_callback(net_a)], strategy="ddp_spawn", devices=RANKS)
    ref = fit(SpatialInLoss(net_b), strategy="ddp_spawn", devices=RANKS)
    assert_same(ours, ref, atol=1e-6)
