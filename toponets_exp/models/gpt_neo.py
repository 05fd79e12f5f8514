"""GPT-Neo-125M (`transformers.GPTNeoForCausalLM`) built from its configuration, no hub access.

The defaults are the EleutherAI/gpt-neo-125M architecture: 12 layers alternating global and local (window 256)
attention, 12 heads, 768 wide, 2048 positions, GPT-2's 50 257-token vocabulary, GELU ("gelu_new") MLP 4x wide,
tied input/output embeddings, no dropout. Smaller variants come from overrides; the global/local alternation follows
`num_layers`. `pretrained_path` loads a local Hugging Face directory (or any format of `load_weights`).
"""

from __future__ import annotations

from transformers import GPTNeoConfig, GPTNeoForCausalLM

from toponets_exp.errors import ConfigError
from toponets_exp.models.checkpoints import load_weights


def attention_types(num_layers: int) -> list[list]:
    """GPT-Neo's run-length attention pattern: global, local, global, ... for `num_layers` layers."""
    pattern = [[["global", "local"], num_layers // 2]]
    if num_layers % 2:
        pattern.append([["global"], 1])
    return pattern


def gpt_neo_125m(vocab_size: int = 50257, max_position_embeddings: int = 2048, num_layers: int = 12,
                 num_heads: int = 12, hidden_size: int = 768, window_size: int = 256, dropout: float = 0.0,
                 pretrained_path: str | None = None) -> GPTNeoForCausalLM:
    """Randomly initialised GPT-Neo (125M by default); weights from `pretrained_path` if given."""
    if num_layers < 1:
        raise ConfigError(f"model.net.num_layers={num_layers} must be >= 1")
    if hidden_size % num_heads:
        raise ConfigError(f"model.net.hidden_size={hidden_size} is not a multiple of model.net.num_heads={num_heads}")
    config = GPTNeoConfig(
        vocab_size=vocab_size, max_position_embeddings=max_position_embeddings, hidden_size=hidden_size,
        num_layers=num_layers, attention_types=attention_types(num_layers), num_heads=num_heads,
        window_size=window_size, activation_function="gelu_new", resid_dropout=dropout, embed_dropout=dropout,
        attention_dropout=dropout, use_cache=False, tie_word_embeddings=True,
        bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1,  # GPT-2's <|endoftext|> is the last id
    )
    net = GPTNeoForCausalLM(config)
    if pretrained_path is not None:
        load_weights(net, pretrained_path)
    return net
