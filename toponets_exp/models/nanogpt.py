"""A compact GPT-2 in one file, in the manner of Karpathy's nanoGPT.

Pre-LayerNorm decoder blocks, causal self-attention through `F.scaled_dot_product_attention` (flash kernels where
available), a 4x GELU MLP, learned positions, the token embedding tied to the output head, and GPT-2's
initialisation (N(0, 0.02), residual projections scaled by 1/sqrt(2·n_layer)). Module names
(`transformer.wte/wpe/h.{i}.ln_1/attn.c_attn/attn.c_proj/ln_2/mlp.c_fc/mlp.c_proj/ln_f`, `lm_head`) follow nanoGPT, so
the official TopoNets NanoGPT checkpoints (12 layers, 12 heads, 768 wide, context 1024, vocabulary 50 304, no biases)
load as they are, and so do TopoLM's (`topolm_gpt`). `forward(idx)` returns the logits (B, T, V).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from toponets_exp.errors import ConfigError
from toponets_exp.models.checkpoints import load_weights, match_state, read_checkpoint
from toponets_exp.models.peer_layouts import topolm_architecture


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one fused q/k/v projection, one output projection."""

    def __init__(self, n_embd: int, n_head: int, bias: bool, dropout: float) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head, self.dropout = n_head, dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
                   for z in self.c_attn(x).split(c, dim=2))  # each (B, heads, T, head_dim)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(b, t, c)))


class MLP(nn.Module):
    """Position-wise feed-forward: n_embd -> 4·n_embd (GELU) -> n_embd."""

    def __init__(self, n_embd: int, bias: bool, dropout: float) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd: int, n_head: int, bias: bool, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, bias, dropout)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, bias, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """GPT-2 language model: token ids (B, T) -> next-token logits (B, T, vocab_size)."""

    def __init__(self, vocab_size: int = 50304, block_size: int = 1024, n_layer: int = 12, n_head: int = 12,
                 n_embd: int = 768, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            drop=nn.Dropout(dropout),
            h=nn.ModuleList(Block(n_embd, n_head, bias, dropout) for _ in range(n_layer)),
            ln_f=nn.LayerNorm(n_embd, bias=bias),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying: one (vocab, n_embd) matrix
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual-stream projections, GPT-2 paper scaling
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2 init: N(0, 0.02) for Linear and Embedding weights, zero biases (LayerNorms keep 1/0)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.block_size:
            raise ValueError(f"sequence length {t} exceeds the model context block_size={self.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def padded_vocab(vocab_size: int, vocab_multiple: int = 64) -> int:
    """A vocabulary size rounded up to a multiple of `vocab_multiple` (nanoGPT: GPT-2's 50 257 -> 50 304)."""
    return -(-int(vocab_size) // int(vocab_multiple)) * int(vocab_multiple)


def gpt(vocab_size: int = 50304, block_size: int = 1024, n_layer: int = 12, n_head: int = 12, n_embd: int = 768,
        dropout: float = 0.0, bias: bool = False, vocab_multiple: int = 64,
        pretrained_path: str | None = None) -> GPT:
    """A GPT with the vocabulary padded up to a multiple of `vocab_multiple` (GPT-2's 50 257 -> 50 304)."""
    if n_embd % n_head:
        raise ConfigError(f"model.net.n_embd={n_embd} is not a multiple of model.net.n_head={n_head}")
    if vocab_multiple < 1:
        raise ConfigError(f"model.net.vocab_multiple={vocab_multiple} must be >= 1")
    net = GPT(padded_vocab(vocab_size, vocab_multiple), block_size, n_layer, n_head, n_embd, dropout, bias)
    if pretrained_path is not None:
        load_weights(net, pretrained_path)
    return net


def architecture(state: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The `gpt` arguments a state dict was saved from; n_head from nanoGPT's saved `model_args` when present."""
    vocab, n_embd = state["transformer.wte.weight"].shape
    out = {"vocab_size": int(vocab), "vocab_multiple": 1, "block_size": int(state["transformer.wpe.weight"].shape[0]),
           "n_embd": int(n_embd), "bias": "transformer.ln_f.bias" in state,
           "n_layer": len({key.split(".")[2] for key in state if key.startswith("transformer.h.")})}
    args = extra.get("model_args")
    if isinstance(args, Mapping) and isinstance(args.get("n_head"), int):
        out["n_head"] = args["n_head"]
    return out


def topolm_gpt(path: str | Path) -> GPT:
    """The project's GPT with a TopoLM checkpoint's weights, built as its model_args say."""
    state, extra, _ = read_checkpoint(path, "topolm")
    net = gpt(**topolm_architecture(extra["model_args"]))
    return match_state(net, state, f"TopoLM checkpoint {str(Path(path).expanduser())!r}")
