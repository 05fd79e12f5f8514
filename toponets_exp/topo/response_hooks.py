"""What every loss on layer responses shares: forward hooks held for one training batch, each layer's loss joined to
the batch's backward through a tensor hook on its output, and the weighted total of the batch's values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle


def join_backward(output: torch.Tensor, loss: Callable[[torch.Tensor], torch.Tensor], coef: float,
                  backward_factor: Callable[[], float]) -> torch.Tensor:
    """loss(output) and its gradient now (on a detached copy); in backward, coef · backward_factor() · that gradient
    is added to the gradient arriving at `output`. Returns the loss, detached."""
    with torch.enable_grad():
        leaf = output.detach().requires_grad_(True)
        value = loss(leaf)
        (grad,) = torch.autograd.grad(value, leaf)
    output.register_hook(lambda incoming: incoming + (grad * (coef * backward_factor())).to(incoming.dtype))
    return value.detach()


@dataclass
class ResponseHooks:
    """The hooks of one training batch and the values its layers' losses took; a subclass holds `layers` (each with
    a `name`)."""

    layers: list[Any]
    values: dict[str, torch.Tensor] = field(default_factory=dict, kw_only=True)
    _handles: list[RemovableHandle] = field(default_factory=list, kw_only=True)

    def detach(self) -> None:
        """Remove the forward hooks (after the training batch: validation, test and predict never see them)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def total(self, coefficient: Callable[[Any], float]) -> torch.Tensor | None:
        """Σ coefficient · L over the layers hooked in the last batch."""
        if not self.values:
            return None
        by_name = {layer.name: layer for layer in self.layers}
        return torch.stack([coefficient(by_name[name]) * value for name, value in self.values.items()]).sum()
