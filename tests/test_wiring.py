"""The wiring cost Σ |w_ij| d_ij (per unit of the layer) against a NumPy derivation written from its definition:
units at their cells' centres in the unit square, a layer's inputs at the previous selected layer's units."""

import numpy as np
import pytest
import torch
from torch import nn

from toponets_exp.errors import ConfigError
from toponets_exp.topo import TopoLoss, select_layers
from toponets_exp.topo.selection import weight_layers


def place(sheet: tuple[int, int], unit: int) -> np.ndarray:
    """Where unit `unit` of an H×W sheet (row-major) sits in the unit square: the centre of its cell."""
    h, w = sheet
    return np.array([(unit // w + 0.5) / h, (unit % w + 0.5) / w])


def numpy_wiring(weight: np.ndarray, sheet: tuple[int, int], in_sheet: tuple[int, int]) -> tuple[float, np.ndarray]:
    """(cost, gradient) of a (out, in, ...) weight, unit by unit and input by input."""
    cost, grad = 0.0, np.zeros_like(weight)
    for i in range(weight.shape[0]):
        for j in range(weight.shape[1]):
            d = np.linalg.norm(place(sheet, i) - place(in_sheet, j))
            cost += np.abs(weight[i, j]).sum() * d
            grad[i, j] = np.sign(weight[i, j]) * d
    return cost / weight.shape[0], grad / weight.shape[0]


class Chain(nn.Module):
    """A conv stack then a Linear head: 3 -> 12 (3x4) -> 10 (2x5) channels, then 10 -> 6 (2x3) features."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.fc = nn.Conv2d(3, 12, 3), nn.Conv2d(12, 10, 3), nn.Linear(10, 6)


def test_cost_and_gradient_equal_the_numpy_derivation():
    torch.manual_seed(0)
    net = Chain().double()
    with torch.no_grad():
        net.b.weight[0, 0, 0, 0] = 0.0  # |w| at 0: no gradient
    layers = select_layers(net, ["a", "b", "fc"], 1.0, 1.0, "wiring")
    assert [(l.key, l.sheet, l.in_sheet) for l in layers] == [("a[wiring]", (3, 4), None),  # places b's inputs
                                                              ("b[wiring]", (2, 5), (3, 4)),
                                                              ("fc[wiring]", (2, 3), (2, 5))]
    assert weight_layers(layers) == layers[1:]
    loss = TopoLoss(weight_layers(layers), reduction="sum")
    total, per_layer = loss()
    expected = {"b[wiring]": numpy_wiring(net.b.weight.detach().numpy(), (2, 5), (3, 4)),
                "fc[wiring]": numpy_wiring(net.fc.weight.detach().numpy(), (2, 3), (2, 5))}
    for key, (cost, _) in expected.items():
        assert per_layer[key].item() == pytest.approx(cost, rel=1e-12)
    autograd = torch.autograd.grad(total, [net.b.weight, net.fc.weight])
    loss.accumulate_grad(2.0)  # τ multiplier 2: twice the gradient, straight into .grad
    assert net.a.weight.grad is None  # the first layer only places the second's inputs
    for param, grad, (_, numpy_grad) in zip([net.b.weight, net.fc.weight], autograd, expected.values()):
        np.testing.assert_allclose(grad.numpy(), numpy_grad, rtol=0, atol=1e-15)
        np.testing.assert_allclose(param.grad.numpy(), 2 * numpy_grad, rtol=0, atol=1e-15)
    assert net.b.weight.grad[0, 0, 0, 0] == 0.0


def test_unit_square_placement_makes_sheets_of_any_size_share_one_space():
    """A 1x1 sheet sits at the centre; two identical sheets have their own units at distance 0."""
    net = nn.Sequential(nn.Linear(4, 1), nn.Linear(1, 4), nn.Linear(4, 4))
    layers = select_layers(net, ["*"], 1.0, 1.0, "wiring")
    with torch.no_grad():
        for layer in layers:
            layer.param.fill_(1.0)
    per_layer = TopoLoss(weight_layers(layers)).layer_losses()
    centre_to_corners = np.linalg.norm([0.25, 0.25])  # 1 unit at (½, ½), a 2x2 sheet's units at (¼|¾, ¼|¾)
    assert float(per_layer["1[wiring]"]) == pytest.approx(centre_to_corners)  # each of 4 units, 1 input
    off_diagonal = (8 * 0.5 + 4 * np.sqrt(0.5)) / 4  # a 2x2 sheet to itself, per unit: 0 on the diagonal
    assert float(per_layer["2[wiring]"]) == pytest.approx(off_diagonal)


def test_wiring_layers_are_mapped_by_their_own_units():
    """The evaluation's layers of a wiring run are its layers, also those a custom `param` addresses (a wrapper)."""
    from toponets_exp.topo.selection import unique_layers

    class Wrapper(nn.Module):  # e.g. BlurPool around a conv: no sheet type, its `weight` named by `param`
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(10, 12, 3, 3))

    net = Chain()
    net.b = Wrapper()
    layers = select_layers(net, ["a", {"pattern": "b", "param": "weight"}], 1.0, 1.0, "wiring")
    assert [(l.name, l.sheet, l.unit_dim) for l in unique_layers(layers)] == [("a", (3, 4), 0), ("b", (2, 5), 0)]


@pytest.mark.parametrize("layers, message", [
    (["a"], "loss=wiring selects only 'a'; the wiring cost needs consecutive layers"),
    (["a", "fc"], "'fc' reads 10 input channels, but the layer selected before it, 'a', has 12 units"),
    ([{"pattern": "b", "side": "input"}], "side=input and param=bias are TopoLoss sheets .*not wiring"),
])
def test_layers_that_cannot_share_a_space_are_config_errors(layers, message):
    with pytest.raises(ConfigError, match=message):
        select_layers(Chain(), layers, 1.0, 1.0, "wiring")
