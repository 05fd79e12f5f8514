"""Explicit unit positions: a layer whose units are permuted on the sheet, with its weights permuted alike, gives
the same TopoLoss (value and gradient), spatial loss and maps as the identity layout; swap optimisation lowers the
spatial loss of a shuffled sheet; the callback places units once and its checkpoint state restores them."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from toponets_exp.topo import TopoLoss, select_layers
from toponets_exp.topo.positions import generator, shuffled, swap_optimise
from toponets_exp.topo.spatial_correlation import sample_neighbourhoods, spatial_correlation_loss
from toponets_exp.topo.spatial_hooks import output_loss


def permuted(net: nn.Sequential, order: torch.Tensor) -> nn.Sequential:
    """A copy of `net` whose first layer's unit order[c] holds the original unit c (weights, bias, and the next
    layer's input columns), so the network computes the same function."""
    out = copy.deepcopy(net)
    with torch.no_grad():
        out[0].weight[order] = net[0].weight
        out[0].bias[order] = net[0].bias
        out[2].weight[:, order] = net[2].weight
    return out


def test_a_permuted_layout_with_permuted_weights_is_the_identity_layout():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 24), nn.Tanh(), nn.Linear(24, 5))
    order = torch.randperm(24)
    other = permuted(net, order)
    items = ["0", {"pattern": "0", "param": "bias"}]
    ref_layers, layers = select_layers(net, items, 2.0, 1.0), select_layers(other, items, 2.0, 1.0)
    for layer in layers:
        layer.order = order
    ref, ours = TopoLoss(ref_layers), TopoLoss(layers)
    (ref_total, ref_per), (total, per) = ref(), ours()
    torch.testing.assert_close(total, ref_total, atol=1e-7, rtol=0)
    assert per.keys() == ref_per.keys()
    ref.accumulate_grad()
    ours.accumulate_grad()
    torch.testing.assert_close(other[0].weight.grad[order], net[0].weight.grad, atol=1e-7, rtol=0)
    torch.testing.assert_close(other[0].bias.grad[order], net[0].bias.grad, atol=1e-7, rtol=0)
    (autograd,) = torch.autograd.grad(total, [other[0].weight])
    torch.testing.assert_close(autograd, other[0].weight.grad, atol=1e-7, rtol=0)

    x = torch.randn(64, 8)
    torch.testing.assert_close(other(x), net(x), atol=1e-6, rtol=0)  # the same function
    hoods = sample_neighbourhoods(layers[0].sheet, 6, 1.0, torch.Generator().manual_seed(1))
    spatial = [select_layers(n, ["0"], 2.0, 1.0, "spatial_correlation")[0] for n in (net, other)]
    spatial[1].order = order
    values = [output_loss(n[0](x), layer, hoods, "locations") for n, layer in zip((net, other), spatial)]
    torch.testing.assert_close(values[1], values[0], atol=1e-6, rtol=0)


def test_maps_of_a_permuted_layout_are_those_of_the_identity_layout(tmp_path):
    from omegaconf import OmegaConf

    from toponets_exp.evaluation.context import on_sheets
    from toponets_exp.evaluation.maps import response_maps, weight_maps
    from toponets_exp.evaluation.recording import record_activations
    from toponets_exp.evaluation.settings import eval_settings

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 5))
    order = torch.randperm(64)
    other = permuted(net, order)
    ev = eval_settings(OmegaConf.create({"seed": 0, "eval": OmegaConf.load("conf/eval/auto.yaml")}))
    x = [torch.randn(200, 8)]
    results = []
    for model, given in ((net, None), (other, order)):
        (layer,) = select_layers(model, ["0"], 2.0, 1.0)
        layer.order = given
        acts = on_sheets([layer], record_activations(model, ["0"], iter(x), reduce="mean", progress=False))
        weights = weight_maps([layer], ev, tmp_path)
        results.append((weights["0"]["weight_smoothness"], response_maps([layer], acts, ev, weights, tmp_path)["0"]))
    (w_ref, r_ref), (w, r) = results
    assert w == pytest.approx(w_ref, abs=1e-6)
    for key in ("response_smoothness", "effective_dimensionality"):
        assert np.isfinite(r[key]) and r[key] == pytest.approx(r_ref[key], abs=1e-6), key
    assert r["topoformer_tgi_per_cutoff"] == pytest.approx(r_ref["topoformer_tgi_per_cutoff"], abs=1e-6, nan_ok=True)


def smooth_layout_responses(side: int, samples: int, seed: int) -> torch.Tensor:
    """Responses of side² units whose correlations fall with distance on a hidden side×side layout."""
    g = torch.Generator().manual_seed(seed)
    field = torch.randn(samples, 1, side, side, generator=g)
    kernel = torch.ones(1, 1, 5, 5) / 25
    return torch.nn.functional.conv2d(field, kernel, padding=2).reshape(samples, side * side)


def test_swap_optimisation_lowers_the_spatial_loss_of_a_shuffled_sheet():
    side = 12
    responses = smooth_layout_responses(side, 200, 0)
    start = shuffled(side * side, generator(0, 0))
    hoods = sample_neighbourhoods((side, side), 40, 2.0, torch.Generator().manual_seed(3))

    def loss(order: torch.Tensor) -> float:
        return float(spatial_correlation_loss(responses[:, order], (side, side), hoods))

    order, kept = swap_optimise(responses, (side, side), start, 60, 40, 2.0, generator(0, 0))
    assert sorted(order.tolist()) == list(range(side * side)) and kept > 0
    assert loss(order) < loss(start) - 0.02 and loss(torch.arange(side * side)) < loss(start)
    again, _ = swap_optimise(responses, (side, side), start, 60, 40, 2.0, generator(0, 0))
    assert torch.equal(order, again)  # a function of the seed


@pytest.mark.parametrize("kind", ["shuffled", "swapopt"])
def test_the_callback_places_units_once_and_its_checkpoint_restores_them(kind):
    from topo_callbacks import topo_callback

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 24), nn.Tanh(), nn.Linear(24, 16))
    layers = ["0", {"pattern": "2", "loss": "spatial_correlation"}]
    settings = {"positions": kind, "swapopt": {"neighbourhoods": 3, "steps": 5, "radius": 1.0},
                "spatial": {"neighbourhoods": 2, "radius": 1.0}}

    class Module(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)

    cb = topo_callback(net, layers, weight=1.0, factor=2.0, seed=4, **settings)
    assert cb.placements.pending
    strategy = type("OneProcess", (), {"broadcast": staticmethod(lambda obj, src=0: obj)})()
    trainer = type("Trainer", (), {"strategy": strategy, "global_step": 0})()
    cb.on_train_batch_start(trainer, Module(), (torch.randn(32, 8), None), 0)
    cb.spatial.detach()
    held = {layer.name: layer.order for layer in cb._held_layers()}
    assert set(held) == {"0", "2"} and all(o is not None and sorted(o.tolist()) == list(range(len(o)))
                                           for o in held.values())
    state = cb.state_dict()
    fresh = topo_callback(copy.deepcopy(net), layers, weight=1.0, factor=2.0, seed=4, **settings)
    fresh.load_state_dict(state)
    assert not fresh.placements.pending
    assert {l.name: l.order.tolist() for l in fresh._held_layers()} == {k: v.tolist() for k, v in held.items()}


def test_positions_are_checked():
    from topo_callbacks import topo_callback
    from toponets_exp.errors import ConfigError

    net = nn.Sequential(nn.Linear(8, 24), nn.Tanh(), nn.Linear(24, 16))
    with pytest.raises(ConfigError, match="topo.positions='grid' is not supported; use one of identity, shuffled"):
        topo_callback(net, ["0"], weight=1.0, positions="grid")
    with pytest.raises(ConfigError, match="topo.swapopt has unknown key"):
        topo_callback(net, ["0"], weight=1.0, positions="swapopt", swapopt={"rounds": 3})
    with pytest.raises(ConfigError, match="the wiring cost keeps the identity layout"):
        topo_callback(net, ["0", "2"], weight=1.0, loss="wiring", positions="shuffled")


def test_swap_optimised_placements_are_rank_zeros_on_every_rank():
    """Ranks record different batches: the placements every rank uses are the ones rank 0 broadcasts."""
    from toponets_exp.topo.positions import Placements

    net = nn.Sequential(nn.Linear(8, 16))
    layers = select_layers(net, ["0"], 2.0, 1.0)
    rank_zeros = {"0": torch.arange(16).flip(0)}
    strategy = type("Rank1", (), {"broadcast": staticmethod(lambda obj, src=0: rank_zeros)})()
    placements = Placements("swapopt", 0, neighbourhoods=2, steps=3, radius=1.0)
    placements.make(net, torch.randn(20, 8), layers, strategy)
    assert placements.by_module is rank_zeros


def test_only_rank_zero_runs_the_swap_optimisation(monkeypatch):
    """Another rank records no responses and optimises nothing: it takes the placements rank 0 broadcasts."""
    from toponets_exp.topo import positions

    net = nn.Sequential(nn.Linear(8, 16))
    layers = select_layers(net, ["0"], 2.0, 1.0)
    net.register_forward_hook(lambda *args: pytest.fail("a rank other than 0 ran the model"))
    sent, rank_zeros = [], {"0": torch.arange(16).flip(0)}
    strategy = type("Rank1", (), {"broadcast": staticmethod(lambda obj, src=0: sent.append(obj) or rank_zeros)})()
    monkeypatch.setattr(positions, "global_rank", lambda: 1)
    placements = positions.Placements("swapopt", 0, neighbourhoods=2, steps=3, radius=1.0)
    placements.make(net, torch.randn(20, 8), layers, strategy)
    assert sent == [None] and placements.by_module is rank_zeros


def test_a_swap_window_larger_than_a_sheet_fails_when_the_run_is_built():
    from topo_callbacks import topo_callback
    from toponets_exp.errors import ConfigError

    net = nn.Sequential(nn.Linear(8, 12), nn.Tanh(), nn.Linear(12, 16))
    with pytest.raises(ConfigError, match=r"topo.swapopt \(layer '0', sheet 3x4\): radius=3.0 needs a 7x7 window"):
        topo_callback(net, ["0", "2"], weight=1.0, factor=1.0, positions="swapopt")
