"""BLiMP scoring of a causal LM: each sentence's total log-probability under the model (brain/blimp.py turns the
scores of the minimal pairs into accuracies)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toponets_exp.evaluation.recording import evaluating, model_device, text_batches
from toponets_exp.models.outputs import logits_of


def _accepts_mask(model: nn.Module) -> bool:
    """Whether the model's forward takes an `attention_mask` keyword."""
    params = inspect.signature(model.forward).parameters
    return "attention_mask" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def sequence_log_prob(model: nn.Module, encode: Callable[[str], list[int]], texts: Sequence[str],
                      device: torch.device | str | None = None, bos_id: int | None = None,
                      batch_size: int = 16) -> np.ndarray:
    """Σ_t log p(token_t | tokens_<t) of each text under a causal LM, as float64 (n,).

    With `bos_id`, the id is prepended so every token of the text is scored (as lm-eval-harness does for BLiMP
    with GPT-2's end-of-text token); without it the first token is context only. Texts are right-padded into
    batches, with an attention mask when the model's forward accepts one (padding after a causal sequence
    cannot change its logits either way).
    """
    prefix = [] if bos_id is None else [int(bos_id)]
    device = torch.device(device) if device is not None else model_device(model)
    use_mask = _accepts_mask(model)
    out = []
    with evaluating(model):
        for batch in text_batches(list(texts), lambda text: prefix + list(encode(text)), batch_size):
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            output = model(ids, attention_mask=mask) if use_mask else model(ids)
            logp = F.log_softmax(logits_of(output)[:, :-1].double(), dim=-1)
            scored = torch.where(mask[:, 1:].bool(), logp.gather(-1, ids[:, 1:, None])[..., 0], 0.0)
            out.append(scored.sum(dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)
