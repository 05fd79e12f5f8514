"""A selected layer: which parameter's units lie on a sheet, the sheet's geometry, and the loss that acts on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from toponets_exp.topo.sheet import unit_matrix


@dataclass
class TopoLayer:
    """One selected layer: which parameter, its sheet geometry, factors and strength τ.

    The sheet's units are the parameter's output units (`side` output), or a matrix's input features (`side` input:
    unit i's vector is column i); a 1-D parameter (a bias) is one number per unit, compared as a whole sheet.
    """

    name: str
    module: nn.Module
    param_name: str
    unit_dim: int
    factor_h: float
    factor_w: float
    weight: float
    sheet: tuple[int, int]
    loss: str = "topoloss"  # topoloss, wiring (on the weights) | spatial_correlation (on the responses)
    schedule: Any = None  # this layer's τ schedule (a Schedule), or None for the callback's
    side: str = "output"  # output | input: which units of the parameter lie on the sheet
    in_sheet: tuple[int, int] | None = None  # wiring: the sheet its input channels lie on (the previous layer's)
    order: torch.Tensor | None = None  # the unit at each sheet cell (row-major), or None: unit i at cell i

    @property
    def param(self) -> nn.Parameter:
        """The parameter whose units form the sheet (looked up live, so it follows device moves)."""
        return getattr(self.module, self.param_name)

    @property
    def whole(self) -> bool:
        """Whether the sheet is compared as a whole (a 1-D parameter: one cosine between it and its blur)."""
        return self.param.ndim == 1

    @property
    def key(self) -> str:
        """The sheet's name in losses and logs: the module's name, with [input] or [<bias>] for those sheets."""
        if self.loss == "wiring":
            return f"{self.name}[wiring]"
        if self.side == "input":
            return f"{self.name}[input]"
        return f"{self.name}[{self.param_name}]" if self.whole else self.name

    def unit_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor shaped like the parameter (its gradient, say) as (units, values per unit), a view where it can."""
        return tensor.reshape(-1, 1) if tensor.ndim == 1 else unit_matrix(tensor, self.unit_dim)

    def on_sheet(self, values: Any, dim: int = 0) -> Any:
        """Per-unit values (a tensor or an array) along `dim` in sheet order, cell by cell (toponets_exp.topo.
        positions): reordered by the layer's placement, if it has one."""
        if self.order is None:
            return values
        if isinstance(values, torch.Tensor):
            return values.index_select(dim, self.order.to(values.device))
        return np.take(values, self.order.numpy(), axis=dim)
