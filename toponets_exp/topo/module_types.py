"""Where a module keeps its units: the axis of its sheet parameter and of its output that counts them."""

from __future__ import annotations

import sys

from torch import nn

SHEET_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_hf_conv1d(module: nn.Module) -> bool:
    """Whether `module` is transformers' GPT-2-style Conv1D, whose weight is stored (in, out).

    Such a module exists only once `transformers.pytorch_utils` is imported, so this never imports transformers.
    """
    pytorch_utils = sys.modules.get("transformers.pytorch_utils")
    return pytorch_utils is not None and isinstance(module, pytorch_utils.Conv1D)


def param_unit_dim(module: nn.Module, param_name: str | None) -> int | None:
    """Axis of the output units in the module's sheet parameter, or None if the type is unsupported.

    The layer type decides, whatever `param` names: a transformers Conv1D stores (in, out) for every weight.
    """
    if is_hf_conv1d(module):
        return 1
    if param_name is not None:
        return 0  # custom attribute (e.g. an RNN's weight_ih_l0): rows are units
    if isinstance(module, SHEET_TYPES):
        return 0
    return None


def output_unit_dim(module: nn.Module, param: nn.Parameter) -> int:
    """Axis of the units in the module's output: channels (1) of a conv map, features (-1) of a Linear.

    Conv and Linear types decide; another module (e.g. a wrapper addressed with `param`) goes by its sheet
    parameter: a conv kernel (>= 3-D) makes conv maps, a matrix makes features. The first training forward checks
    that this axis has the sheet's unit count.
    """
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return 1
    if isinstance(module, nn.Linear) or is_hf_conv1d(module):
        return -1
    return 1 if param.ndim >= 3 else -1
