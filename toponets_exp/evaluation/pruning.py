"""L1 magnitude pruning of a model's named layers, and the task metric over a range of sparsities."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from toponets_exp.evaluation.recording import resolve_modules

log = logging.getLogger(__name__)
Evaluate = Callable[[nn.Module], float]


def _weighted(model: nn.Module, layer_names: Sequence[str]) -> dict[str, nn.Module]:
    """Named modules that own a `weight` parameter, or a ValueError naming one that does not."""
    modules = resolve_modules(model, layer_names)
    for name, module in modules.items():
        if not isinstance(getattr(module, "weight", None), torch.Tensor):
            raise ValueError(f"layer {name!r} ({type(module).__name__}) has no weight tensor to prune")
    return modules


def prune_l1(model: nn.Module, layer_names: Sequence[str], amount: float) -> nn.Module:
    """A deep copy whose named layers have the fraction `amount` of their smallest-|w| weights set to zero."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount <= 1.0:
        raise ValueError(f"pruning amount={amount!r} must be a sparsity in [0, 1]")
    pruned = copy.deepcopy(model)
    for module in _weighted(pruned, layer_names).values():
        prune.l1_unstructured(module, "weight", amount=float(amount))
        prune.remove(module, "weight")
    return pruned


def pruning_curve(model: nn.Module, layer_names: Sequence[str], sparsities: Sequence[float] = (0.0, 0.2, 0.5, 0.8),
                  *, evaluate: Evaluate) -> dict[float, float]:
    """evaluate(pruned model) for each sparsity of L1 unstructured pruning of the named layers."""
    _weighted(model, layer_names)
    curve = {}
    for s in sparsities:
        curve[float(s)] = float(evaluate(prune_l1(model, layer_names, s)))
        log.info("L1 pruning: sparsity %g -> metric %.4g", s, curve[float(s)])
    return curve
