"""The weights in TDANN's and TopoLM's published checkpoint files, under the names of the project's backbones.

TDANN (neuroailab/TDANN; VISSL checkpoints such as `model_final_checkpoint_phase199.torch`): VISSL saves
{"classy_state_dict": {"base_model": {"model": {"trunk": ..., "heads": ...}, "meta": ...}, ...}, "phase_idx", ...}
(vissl/hooks/log_hooks.py, vissl/models/base_ssl_model.py::get_classy_state). TDANN's trunks
(spacetorch/models/trunks/resnet.py) hold a torchvision ResNet as `base_model` and alias its blocks in a ModuleDict
`_feature_blocks` (`layer1_0` = base_model.layer1[0], ...; VisslResNet: `bn1`, `layer1` ...), so the trunk's state
dict names every tensor twice: `base_model.<torchvision name>` and `_feature_blocks.<alias>`. `base_model.fc` is
Identity (no keys) except in SpatialResNet50, whose untrained fc TDANN's loader drops. Supervised models carry
their classifier as VISSL head 0, an MLP of one Linear: heads `0.clf.0.weight` / `0.clf.0.bias`; SimCLR heads are
a projection MLP, not read.

TopoLM (epflneuroailab/topolm models/train.py): {"model": state dict, "optimizer", "model_args", "iter_num",
"best_val_loss", "config"}, keys prefixed `_orig_mod.` when trained with torch.compile. Its GPT
(models/model.py) names its tensors as our nanoGPT does (transformer.wte/wpe, h.{i}.ln_1, attn.c_attn, attn.c_proj,
ln_2, mlp.c_fc, mlp.c_proj, ln_f, lm_head), so the mapping is the identity; model_args spell the width `n_embed`
(ours `n_embd`). Three TopoLM variants have other tensors and are refused: head_loss, attn_proj, finetune.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from toponets_exp.errors import CheckpointError, few

log = logging.getLogger(__name__)
VISSL_NESTING = ("classy_state_dict", "base_model", "model")
TRUNK_PREFIX = "base_model."
ALIAS_PREFIX = "_feature_blocks."
SUPERVISED_HEAD = {"0.clf.0.weight": "fc.weight", "0.clf.0.bias": "fc.bias"}
TOPOLM_ARGS = ("n_layer", "n_head", "n_embed", "block_size", "bias", "vocab_size")
TOPOLM_REFUSED = {
    "head_loss": "its attention output projection is a parameter-free reshape (head_loss=True)",
    "attn_proj": "its blocks add an attn_proj Linear after attention (attn_proj=True)",
    "finetune": "it is a GLUE-finetuned classifier whose lm_head was replaced (finetune=True)",
}


def is_vissl(content: Any) -> bool:
    """Whether a loaded file is a VISSL checkpoint."""
    return isinstance(content, Mapping) and "classy_state_dict" in content


def is_topolm(content: Any) -> bool:
    """Whether a loaded file is a TopoLM checkpoint: nanoGPT's layout with model_args spelling `n_embed`."""
    return (isinstance(content, Mapping) and isinstance(content.get("model"), Mapping)
            and isinstance(content.get("model_args"), Mapping) and "n_embed" in content["model_args"])


def _vissl_model(content: Any, source: str) -> Mapping[str, Any]:
    """classy_state_dict/base_model/model of a VISSL checkpoint: {"trunk": ..., "heads": ...}."""
    node, where = content, []
    for key in VISSL_NESTING:
        if not isinstance(node, Mapping) or key not in node:
            raise CheckpointError(f"{source} has no {'/'.join([*where, key])}; a VISSL checkpoint keeps the weights "
                                  f"under {'/'.join(VISSL_NESTING)}/trunk")
        node, where = node[key], [*where, key]
    if not isinstance(node, Mapping) or not isinstance(node.get("trunk"), Mapping):
        raise CheckpointError(f"{source} has no {'/'.join(VISSL_NESTING)}/trunk state dict")
    return node


def _alias_target(key: str) -> str:
    """The torchvision name a `_feature_blocks.` key aliases (`layer1_0.conv1.weight` -> `layer1.0.conv1.weight`)."""
    return re.sub(r"^layer(\d+)_(\d+)\.", r"layer\1.\2.", key[len(ALIAS_PREFIX):])


def _trunk_state(trunk: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """The torchvision state dict of a TDANN trunk: `base_model.` keys unprefixed, aliases checked, fc dropped."""
    foreign = [str(k) for k in trunk if not str(k).startswith((TRUNK_PREFIX, ALIAS_PREFIX))]
    state = {k[len(TRUNK_PREFIX):]: v for k, v in trunk.items() if str(k).startswith(TRUNK_PREFIX)}
    if foreign:
        raise CheckpointError(f"{source}: trunk keys {few(foreign)} are neither TDANN's 'base_model.' (torchvision) "
                              "nor '_feature_blocks.' (alias) names")
    if not state:
        raise CheckpointError(f"{source}: the trunk has no 'base_model.' keys (TDANN's torchvision ResNet)")
    if not all(isinstance(v, torch.Tensor) for v in trunk.values()):
        raise CheckpointError(f"{source}: the trunk state dict holds values that are not tensors")
    differ = [k for k, v in trunk.items() if k.startswith(ALIAS_PREFIX)
              and not (_alias_target(k) in state and torch.equal(state[_alias_target(k)], v))]
    if differ:
        raise CheckpointError(f"{source}: trunk keys {few(differ)} do not repeat the 'base_model.' tensors they alias")
    if "fc.weight" in state:
        log.info("%s: the trunk's fc %s is dropped (untrained in TDANN's SpatialResNet50; TDANN's loader drops it "
                 "too)", source, tuple(state["fc.weight"].shape))
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def _classifier(heads: Any, source: str) -> dict[str, torch.Tensor]:
    """The supervised classifier of VISSL head 0 as torchvision's fc, or {} when the heads are no classifier."""
    heads = heads if isinstance(heads, Mapping) else {}
    if set(heads) == set(SUPERVISED_HEAD) and all(isinstance(v, torch.Tensor) for v in heads.values()):
        return {SUPERVISED_HEAD[k]: v for k, v in heads.items()}
    if heads:
        log.info("%s: heads %s are not a supervised classifier (0.clf.0); the trunk is read without fc", source,
                 few([str(k) for k in heads]))
    return {}


def vissl_state(content: Any, path: Path) -> dict[str, torch.Tensor]:
    """A TDANN VISSL checkpoint's weights in torchvision ResNet names; fc.* only from a supervised classifier."""
    source = f"VISSL checkpoint {str(path)!r}"
    model = _vissl_model(content, source)
    return {**_trunk_state(model["trunk"], source), **_classifier(model.get("heads"), source)}


def topolm_args(content: Any, path: Path) -> Mapping[str, Any]:
    """A TopoLM checkpoint's model_args, checked to describe a GPT the project's nanoGPT builds."""
    if not is_topolm(content):
        raise CheckpointError(f"checkpoint {str(path)!r} is not a TopoLM checkpoint: it lacks a 'model' state dict "
                              "beside model_args naming n_embed")
    args = content["model_args"]
    missing = [key for key in TOPOLM_ARGS if key not in args]
    if missing:
        raise CheckpointError(f"TopoLM checkpoint {str(path)!r}: model_args lack {few(missing)}")
    refused = [why for key, why in TOPOLM_REFUSED.items() if args.get(key)]
    if refused:
        raise CheckpointError(f"TopoLM checkpoint {str(path)!r} does not fit the project's GPT: {'; '.join(refused)}")
    return args


def topolm_architecture(args: Mapping[str, Any]) -> dict[str, Any]:
    """The project's `gpt` arguments for TopoLM's model_args (n_embed -> n_embd; the vocabulary as saved)."""
    return {"vocab_size": int(args["vocab_size"]), "vocab_multiple": 1, "block_size": int(args["block_size"]),
            "n_layer": int(args["n_layer"]), "n_head": int(args["n_head"]), "n_embd": int(args["n_embed"]),
            "bias": bool(args["bias"])}
