"""A TopoLossCallback on a network's layers selected by patterns, as a run builds it."""

from collections.abc import Sequence
from typing import Any

from torch import nn

from toponets_exp.topo import TopoLossCallback, select_layers


def topo_callback(net: nn.Module, layers: Sequence[Any], weight: float, factor: Any = 3.0, loss: str = "topoloss",
                  **kwargs: Any) -> TopoLossCallback:
    """select_layers(net, layers, factor, weight, loss), then the callback on them."""
    return TopoLossCallback(select_layers(net, layers, factor, weight, loss), **kwargs)
