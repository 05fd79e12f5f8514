"""Backbone builders, BlurPool and checkpoint loading.

`toponets_exp.models.gpt_neo.gpt_neo_125m` is not re-exported here: it imports transformers (seconds), which vision
runs should not pay for.
"""

from toponets_exp.models.blurpool import BlurPoolConv2d, apply_blurpool
from toponets_exp.models.checkpoints import load_weights
from toponets_exp.models.nanogpt import GPT, gpt
from toponets_exp.models.resnet import resnet18, resnet50
from toponets_exp.models.vit import vit_b_32

__all__ = ["GPT", "BlurPoolConv2d", "apply_blurpool", "gpt", "load_weights", "resnet18", "resnet50", "vit_b_32"]
