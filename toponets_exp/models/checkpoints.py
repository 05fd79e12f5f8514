"""Load backbone weights from local files: the published TopoNets checkpoints and our Lightning checkpoints.

Formats (`format=`; "auto" tells them apart by content):
- "plain": a bare state dict — the official TopoNets ResNet-18 (BlurPool) and ResNet-50 files.
- "model": a dict holding the state dict under "model" — the official ViT-B/32 file (torchvision reference
  training script) and the official NanoGPT files (nanoGPT `train.py`, keys possibly prefixed `_orig_mod.`).
- "lightning": our Lightning `.ckpt`: the state dict under "state_dict", backbone keys prefixed `net.`.
- "vissl": a TDANN VISSL checkpoint (`model_final_checkpoint_phase199.torch`), read as torchvision ResNet names
  (`peer_layouts.vissl_state`: the trunk, plus fc when a supervised classifier head is there).
- "topolm": a TopoLM checkpoint: nanoGPT's layout with model_args spelling `n_embed`; variants whose tensors the
  project's GPT lacks are refused (`peer_layouts.topolm_args`).
- "huggingface": a Hugging Face model directory (config.json + weights), e.g. GPT-Neo-125M, read with
  `from_pretrained` from the local directory only.
Files are read with `torch.load(..., weights_only=True)`; `argparse.Namespace` (the "args" entry the torchvision
reference script stores next to the weights) is the one non-tensor type allowed in addition.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toponets_exp.errors import CheckpointError, few
from toponets_exp.models.peer_layouts import is_topolm, is_vissl, topolm_args, vissl_state
from toponets_exp.restricted_pickle import load_failure


log = logging.getLogger(__name__)

FORMATS = {
    "plain": "a bare state dict {parameter name: tensor} (official ResNet-18/50)",
    "model": "a dict with the state dict under 'model' (official ViT-B/32, NanoGPT)",
    "lightning": "a Lightning checkpoint with 'state_dict' keys prefixed 'net.' (our .ckpt files)",
    "vissl": "a VISSL checkpoint with classy_state_dict/base_model/model/trunk (TDANN)",
    "topolm": "a dict with the state dict under 'model' and model_args naming n_embed (TopoLM)",
    "huggingface": "a Hugging Face model directory with config.json (GPT-Neo)",
}
LIGHTNING_PREFIX = "net."  # the backbone attribute of every LightningModule in toponets_exp.lit
COMPILE_PREFIX = "_orig_mod."  # torch.compile's wrapper name inside saved keys


def _expected_formats() -> str:
    """The accepted formats, one clause each."""
    return "; ".join(f"{name}: {what}" for name, what in FORMATS.items())


def read_file(path: Path) -> Any:
    """`torch.load` a checkpoint file on CPU with weights_only=True, turning failures into a CheckpointError."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever torch.load makes of a damaged or foreign file
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read with torch.load(weights_only=True) ({load_failure(err)}); "
            "expected a PyTorch checkpoint file, whole (not truncated or damaged)") from None


def detect_format(path: Path, content: Any) -> str:
    """The format of a loaded checkpoint file, told apart by its top-level keys."""
    if is_vissl(content):
        return "vissl"
    if is_topolm(content):
        return "topolm"
    if isinstance(content, Mapping):
        if isinstance(content.get("state_dict"), Mapping):
            return "lightning"
        if isinstance(content.get("model"), Mapping):
            return "model"
        if content and all(isinstance(v, torch.Tensor) for v in content.values()):
            return "plain"
        shown = few([str(k) for k in content])
        raise CheckpointError(f"checkpoint {str(path)!r} has top-level keys [{shown}], which fit no known format; "
                              f"expected {_expected_formats()}")
    raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(content).__name__}, not a dict; "
                          f"expected {_expected_formats()}")


def extract_state(content: Any, fmt: str, path: Path) -> dict[str, torch.Tensor]:
    """The backbone state dict inside a loaded file of a given format, with `_orig_mod.` prefixes removed."""
    if fmt == "vissl":
        return vissl_state(content, path)
    if fmt == "topolm":
        topolm_args(content, path)
    where = {"plain": None, "model": "model", "topolm": "model", "lightning": "state_dict"}[fmt]
    state = content.get(where) if isinstance(content, Mapping) and where else content
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = few([str(k) for k in content]) if isinstance(content, Mapping) else type(content).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} is not in format {fmt!r} ({FORMATS[fmt]}); "
                              f"its top level is [{keys}]")
    if fmt == "lightning":
        state = {k[len(LIGHTNING_PREFIX):]: v for k, v in state.items() if k.startswith(LIGHTNING_PREFIX)}
        if not state:
            raise CheckpointError(f"checkpoint {str(path)!r} has no 'state_dict' keys starting with "
                                  f"{LIGHTNING_PREFIX!r} (the LightningModule's backbone attribute)")
    return {k.replace(COMPILE_PREFIX, ""): v for k, v in state.items()}


def huggingface_state(net: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """State dict of the Hugging Face model saved in directory `path`, built with `type(net).from_pretrained`."""
    from transformers import PreTrainedModel

    if not isinstance(net, PreTrainedModel):
        raise CheckpointError(f"{str(path)!r} is a directory (Hugging Face format), which only a transformers model "
                              f"can load; the backbone is a {type(net).__name__}")
    if not path.is_dir():
        raise CheckpointError(f"format 'huggingface' expects a model directory, {str(path)!r} is a file")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"directory {str(path)!r} has no config.json; expected a Hugging Face model directory "
                              "(config.json + model.safetensors or pytorch_model.bin)")
    try:
        loaded = type(net).from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"Hugging Face directory {str(path)!r} cannot be loaded: {err}") from None
    return dict(loaded.state_dict())


def match_state(net: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load `state` into `net` strictly, or raise a CheckpointError listing missing, unexpected and mis-shaped keys."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        problems = [f"{name}: {few(keys)}" for name, keys in
                    (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)) if keys]
        raise CheckpointError(f"{source} does not fit {type(net).__name__} (does the model config match the "
                              f"architecture it was saved from?): " + "; ".join(problems))
    net.load_state_dict(state)
    return net


def _checked_path(path: str | Path, format: str) -> Path:
    """An existing checkpoint path and a known format name."""
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"checkpoint format={format!r} is not supported; use auto or one of {', '.join(FORMATS)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint path {str(path)!r} does not exist")
    return path


def read_checkpoint(path: str | Path, format: str = "auto") -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """A checkpoint file's backbone state dict, its other top-level entries (e.g. nanoGPT's model_args), its format."""
    path = _checked_path(path, format)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory; read_checkpoint reads files (a Hugging Face "
                              "directory loads with load_weights)")
    content = read_file(path)
    fmt = detect_format(path, content) if format == "auto" else format
    state = extract_state(content, fmt, path)
    extra = {str(k): v for k, v in content.items() if not isinstance(v, torch.Tensor)} if fmt != "plain" else {}
    return state, extra, fmt


def load_weights(net: nn.Module, path: str | Path, format: str = "auto") -> nn.Module:
    """Load weights from a local checkpoint (file or HF directory) into `net` in place, and return it."""
    path = _checked_path(path, format)
    if format == "huggingface" or (format == "auto" and path.is_dir()):
        state, fmt = huggingface_state(net, path), "huggingface"
    elif path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory, but format={format!r} expects a file")
    else:
        state, _, fmt = read_checkpoint(path, format)
    match_state(net, state, f"checkpoint {str(path)!r} (format {fmt})")
    log.info("loaded %d tensors into %s from %s (format %s)", len(state), type(net).__name__, path, fmt)
    return net
