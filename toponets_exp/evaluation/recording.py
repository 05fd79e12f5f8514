"""Record named modules' outputs over a stimulus set with forward hooks, one (stimuli × units) array per layer.

Each hooked output is reduced to one vector per stimulus inside the hook, so only the reduced float32 rows are
kept, never a layer's full activations over the stimulus set:

- (B, units): kept as is;
- (B, C, *spatial) with >= 2 spatial dims (conv feature maps): averaged over space, one value per channel;
- (B, T, units) (token sequences): averaged over the token positions, or the last token with ``reduce="last"``;
- with ``reduce="flatten"`` every value is kept: (B, C, H, W) -> (B, C·H·W) (TDANN's un-pooled features);
  when the batch is a mapping with an ``attention_mask`` (B, T), padding positions are left out of the mean and
  "last" is the last non-padding position (left or right padding both work).

A module output that is a tuple or list (e.g. a transformer block's ``(hidden, ...)``) is recorded by its first
element. With ``rectify=True`` the output is rectified (max(x, 0), a ReLU after the layer) before it is reduced.
``units[name]`` keeps only those flat indices of a layer's reduced row (a sample of a large layer's units);
a name in ``inputs`` is recorded at its module's first input instead of its output (a residual stream that enters
a module).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from toponets_exp.resume.stop import stop_if_caught

REDUCTIONS = ("mean", "last", "flatten")


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Run a block in eval mode under `torch.inference_mode()`, restoring every submodule's training flag."""
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for module, flag in flags.items():
            module.training = flag


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for a model without either."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside a (nested) batch of tensors, mappings, lists and tuples to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def default_forward(model: nn.Module, batch: Any) -> Any:
    """Call the model on a batch: a mapping as keyword arguments, a (inputs, targets, ...) sequence by its inputs."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (list, tuple)):
        return model(batch[0])
    return model(batch)


def resolve_modules(model: nn.Module, layer_names: Sequence[str]) -> dict[str, nn.Module]:
    """The named submodules, or a ValueError naming an unknown layer and the closest existing names."""
    if not layer_names:
        raise ValueError("layer_names is empty; name at least one module of the model (see model.named_modules())")
    modules = dict(model.named_modules())
    out = {}
    for name in layer_names:
        if name not in modules:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=6, cutoff=0.5)
            hint = f"closest names: {', '.join(close)}" if close else "see model.named_modules() for the names"
            raise ValueError(f"layer {name!r} is not a module of {type(model).__name__}; {hint}")
        out[name] = modules[name]
    return out


def _mean_tokens(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, U) -> (B, U): mean over the positions where mask is nonzero (all positions without a mask)."""
    if mask is None:
        return x.mean(dim=1)
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def _last_token(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, U) -> (B, U): the last position whose mask is nonzero (the last position without a mask)."""
    if mask is None:
        return x[:, -1]
    flipped = (mask.flip(1) != 0).to(torch.int8)
    last = x.shape[1] - 1 - flipped.argmax(dim=1)
    return x[torch.arange(x.shape[0], device=x.device), last]


def reduce_output(output: Any, reduce: str, mask: torch.Tensor | None, name: str,
                  rectify: bool = False) -> torch.Tensor:
    """One module output -> (B, units) following the module docstring's rules."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"layer {name!r} returns {type(output).__name__}, not a tensor; record a module whose "
                          "output is a tensor (or a tuple starting with one)")
    x = output.float().clamp_min(0) if rectify else output.float()
    if x.ndim == 2:
        return x
    if reduce == "flatten":
        return x.flatten(1)
    if x.ndim >= 4:
        return x.flatten(2).mean(dim=2)
    if x.ndim != 3:
        raise ValueError(f"layer {name!r} outputs shape {tuple(x.shape)}; expected (B, units), (B, T, units) "
                          "or (B, C, H, W)")
    if mask is not None and tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"layer {name!r} outputs {tuple(x.shape)} but the batch's attention_mask is "
                          f"{tuple(mask.shape)}; the mask must be (batch, tokens) of the layer's sequence")
    return _mean_tokens(x, mask) if reduce == "mean" else _last_token(x, mask)


class _Recorder:
    """Forward hooks that reduce each named module's output once per forward call into per-batch rows."""

    def __init__(self, modules: Mapping[str, nn.Module], reduce: str, rectify: bool = False,
                 units: Mapping[str, np.ndarray] | None = None, inputs: Collection[str] = ()) -> None:
        self.reduce, self.rectify = reduce, rectify
        self.units = {name: torch.as_tensor(index, dtype=torch.long) for name, index in (units or {}).items()}
        self.mask: torch.Tensor | None = None
        self.current: dict[str, np.ndarray] = {}
        self.chunks: dict[str, list[np.ndarray]] = {name: [] for name in modules}
        self.handles = [module.register_forward_pre_hook(self._hook(name, True)) if name in inputs
                        else module.register_forward_hook(self._hook(name, False)) for name, module in modules.items()]

    def _keep(self, name: str, output: Any) -> None:
        """Store the reduced (and unit-selected) rows of one module call for the current batch."""
        if name in self.current:
            raise ValueError(f"layer {name!r} ran more than once in one forward pass (a shared module); "
                              "record a module that runs once per input")
        rows = reduce_output(output, self.reduce, self.mask, name, self.rectify)
        if name in self.units:
            index = self.units[name]
            if index.numel() and int(index.max()) >= rows.shape[1]:
                raise ValueError(f"layer {name!r} has {rows.shape[1]} units, fewer than the unit indices given "
                                  f"for it (up to {int(index.max())})")
            rows = rows[:, index.to(rows.device)]
        self.current[name] = rows.detach().cpu().numpy().astype(np.float32, copy=False)

    def _hook(self, name: str, at_input: bool) -> Callable[..., None]:
        """A hook storing the reduced output (`at_input`: first input) of module `name` for the current batch."""
        def hook(module: nn.Module, inputs: Any, output: Any = None) -> None:
            """Reduce this forward call's output (or input) to (B, units) rows on the CPU."""
            self._keep(name, inputs if at_input else output)
        return hook

    def commit(self) -> None:
        """Keep the current batch's rows, checking that every hooked module ran."""
        missing = [name for name in self.chunks if name not in self.current]
        if missing:
            raise ValueError(f"layers {missing} did not run in the forward pass; check the names and the forward")
        for name, rows in self.current.items():
            self.chunks[name].append(rows)
        self.current = {}

    def remove(self) -> None:
        """Detach every hook."""
        for handle in self.handles:
            handle.remove()


def record_activations(
    model: nn.Module,
    layer_names: Sequence[str],
    batches: Iterable[Any],
    reduce: str = "mean",
    device: torch.device | str | None = None,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    progress: bool = True,
    rectify: bool = False,
    units: Mapping[str, np.ndarray] | None = None,
    inputs: Collection[str] = (),
) -> dict[str, np.ndarray]:
    """Each named module's output over all batches as a float32 (stimuli × units) array, keyed by layer name.

    `forward(model, batch)` runs one batch (default: mapping -> ``model(**batch)``, sequence -> ``model(batch[0])``,
    tensor -> ``model(batch)``); batches are moved to `device` (default: the model's device) first.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce={reduce!r} is not supported; use one of {', '.join(REDUCTIONS)}")
    modules = resolve_modules(model, layer_names)
    device = torch.device(device) if device is not None else model_device(model)
    run = forward or default_forward
    recorder = _Recorder(modules, reduce, rectify, units, inputs)
    try:
        with evaluating(model):
            for batch in tqdm(batches, desc="activations", unit="batch", disable=None if progress else True):
                stop_if_caught("the recording of responses")  # inside a Slurm job, after a signal
                batch = to_device(batch, device)
                recorder.mask = batch.get("attention_mask") if isinstance(batch, Mapping) else None
                run(model, batch)
                recorder.commit()
    finally:
        recorder.remove()
    if not any(recorder.chunks.values()):
        raise ValueError("batches yielded no stimuli; pass a non-empty iterable of batches")
    return {name: np.concatenate(chunks, axis=0) for name, chunks in recorder.chunks.items()}


def text_batches(texts: Sequence[str], encode: Callable[[str], list[int]], batch_size: int = 16,
                 pad_id: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Right-padded ``{"input_ids", "attention_mask"}`` batches of encoded texts, in order."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    for start in range(0, len(texts), batch_size):
        ids = [list(encode(text)) for text in texts[start:start + batch_size]]
        empty = [texts[start + i] for i, seq in enumerate(ids) if not seq]
        if empty:
            raise ValueError(f"encode() returned no tokens for {empty[0]!r}; every text needs >= 1 token")
        width = max(len(seq) for seq in ids)
        input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        yield {"input_ids": input_ids, "attention_mask": mask}


def text_responses(model: nn.Module, layer_name: str, encode: Callable[[str], list[int]], reduce: str = "last",
                   batch_size: int = 16, device: torch.device | str | None = None,
                   pad_id: int = 0) -> Callable[[Sequence[str]], np.ndarray]:
    """A function texts -> (n_texts, units) responses of one layer of a language model (last token or mean)."""
    resolve_modules(model, [layer_name])

    def responses(texts: Sequence[str]) -> np.ndarray:
        """Responses of the layer to these texts."""
        batches = text_batches(list(texts), encode, batch_size, pad_id)
        return record_activations(model, [layer_name], batches, reduce, device, progress=False)[layer_name]

    return responses
