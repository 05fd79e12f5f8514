"""What a causal language model's forward returns, reduced to its logits."""

from __future__ import annotations

from typing import Any

import torch


def logits_of(output: Any) -> torch.Tensor:
    """The (batch, tokens, vocab) logits of a causal LM output: the tensor, an object with `.logits`, or a tuple."""
    if hasattr(output, "logits"):
        output = output.logits
    elif isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor) or output.ndim != 3:
        found = type(output).__name__ if not isinstance(output, torch.Tensor) else f"shape {tuple(output.shape)}"
        raise TypeError(f"the language model returned {found}; it must return (batch, tokens, vocab) logits: a "
                        "tensor, an object with .logits, or a tuple starting with one")
    return output
