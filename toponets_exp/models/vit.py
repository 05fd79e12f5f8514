"""torchvision ViT-B/32 builder (random init) with the sizes reachable from config for tiny variants."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torchvision.models.vision_transformer import VisionTransformer

from toponets_exp.errors import ConfigError
from toponets_exp.models.checkpoints import load_weights


def vit_b_32(num_classes: int = 1000, image_size: int = 224, patch_size: int = 32, num_layers: int = 12,
             num_heads: int = 12, hidden_dim: int = 768, mlp_dim: int = 3072, dropout: float = 0.0,
             attention_dropout: float = 0.0, pretrained_path: str | None = None) -> VisionTransformer:
    """torchvision `vit_b_32` (module names as in the official TopoNets checkpoint); the defaults are ViT-B/32."""
    if image_size % patch_size:
        fits = max(d for d in range(1, image_size + 1) if image_size % d == 0 and image_size // d >= 4)
        raise ConfigError(f"model.net.image_size={image_size} is not a multiple of model.net.patch_size={patch_size}: "
                          f"set data.image_size (model.net.image_size follows it) to a multiple of {patch_size}, or "
                          f"a patch size that divides it, e.g. model.net.patch_size={fits} ({image_size // fits}x"
                          f"{image_size // fits} patches)")
    if hidden_dim % num_heads:
        raise ConfigError(f"model.net.hidden_dim={hidden_dim} is not a multiple of model.net.num_heads={num_heads}")
    net = VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers, num_heads=num_heads,
                            hidden_dim=hidden_dim, mlp_dim=mlp_dim, dropout=dropout,
                            attention_dropout=attention_dropout, num_classes=num_classes)
    if pretrained_path is not None:
        load_weights(net, pretrained_path)
    return net


def architecture(state: Mapping[str, torch.Tensor], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The `vit_b_32` arguments a state dict was saved from (all but num_heads, which no shape records)."""
    hidden, _, patch, _ = state["conv_proj.weight"].shape
    tokens = state["encoder.pos_embedding"].shape[1] - 1  # patches, without the class token
    layers = {key.split(".")[2] for key in state if key.startswith("encoder.layers.")}
    return {"num_classes": int(state["heads.head.weight"].shape[0]), "patch_size": int(patch),
            "image_size": int(patch) * math.isqrt(int(tokens)), "hidden_dim": int(hidden), "num_layers": len(layers),
            "mlp_dim": int(state["encoder.layers.encoder_layer_0.mlp.0.weight"].shape[0])}
