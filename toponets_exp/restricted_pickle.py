"""Read a pickle without running code from it: a global is resolved only when the reader admits it by name.

`pickle.load` calls whatever a file names (`os.system`, `builtins.eval`, ...). `read_pickle` resolves a class or
function only from a short list, and refuses any other name in one line before anything is called:
- NumPy arrays and scalars: `numpy.ndarray`, `numpy.dtype`, `_reconstruct` and `scalar` of `numpy.core.multiarray`
  (NumPy 1 writers) or `numpy._core.multiarray` (NumPy 2);
- with `tensors=True`, PyTorch tensors as plain `pickle.dump` writes them: `torch._utils._rebuild_tensor_v2`,
  `collections.OrderedDict` (its hooks argument) and `torch.storage._load_from_bytes`, whose bytes (PyTorch's
  legacy serialisation of one storage) are read here with `torch.load(weights_only=True)` on the CPU instead;
- the record classes the reader names (e.g. TDANN's `spacetorch.models.positions.LayerPositions`): the class is
  never imported; the object comes back as a `PickledRecord` holding the pickled fields.
"""

from __future__ import annotations

import functools
import io
import pickle
import warnings
from collections import OrderedDict
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from toponets_exp.errors import CheckpointError, UnsafePickleError

try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # NumPy 1.x, which the project still allows
    from numpy.core import multiarray as _multiarray


class PickledRecord:
    """The fields of a pickled object of an admitted record class (`path` names that class; it is not imported)."""

    path = ""

    def __new__(cls, *args: Any) -> PickledRecord:
        """An empty record (pickle's NEWOBJ); its fields come with __setstate__."""
        record = super().__new__(cls)
        record.fields = {}
        return record

    def __setstate__(self, state: Any) -> None:
        """Keep the pickled fields (pickle's BUILD), without running any code of the original class."""
        fields = state[0] if isinstance(state, tuple) and len(state) == 2 else state  # (dict, slots) or dict
        if not isinstance(fields, dict):
            raise pickle.UnpicklingError(f"the state of {self.path} is a {type(fields).__name__}, not its fields")
        self.fields = dict(fields)


def load_failure(err: BaseException) -> str:
    """What a torch.load failure says in one line: the weights-only unpickler's reason (e.g. the global it refused),
    not its advice to load the file unsafely; else the error's first line."""
    text = str(err).strip().rsplit("WeightsUnpickler error:", 1)[-1].strip()
    return f"{type(err).__name__}: {text.splitlines()[0].split('. ')[0]}" if text else type(err).__name__


def _storage_from_bytes(data: bytes, source: str) -> Any:
    """A storage pickled by `torch.storage._load_from_bytes`, read with weights_only=True on the CPU."""
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"torch.storage._load_from_bytes got a {type(data).__name__}, not bytes")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever torch.load makes of bytes that are no storage
        raise UnsafePickleError(f"{source} holds tensor bytes that torch.load(weights_only=True) refuses "
                                f"({load_failure(err)}); refused without running them") from None


ARRAYS: dict[str, Any] = {
    **{f"{module}.{name}": getattr(_multiarray, name)
       for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")},
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
}


def _tensors(source: str) -> dict[str, Any]:
    """The globals of PyTorch tensors that plain pickle.dump wrote, their storage bytes read safely."""
    return {"torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
            "torch.storage._load_from_bytes": functools.partial(_storage_from_bytes, source=source),
            "collections.OrderedDict": OrderedDict}


class _Unpickler(pickle.Unpickler):
    """An unpickler that resolves only the admitted globals and refuses the rest by name."""

    def __init__(self, stream: BinaryIO, admitted: Mapping[str, Any], source: str, kinds: str) -> None:
        super().__init__(stream)
        self.admitted, self.source, self.kinds = admitted, source, kinds

    def find_class(self, module: str, name: str) -> Any:
        """The admitted object named `module.name`; any other name is refused before it is imported or called."""
        path = f"{module}.{name}"
        if path not in self.admitted:
            raise UnsafePickleError(f"{self.source} names {path}, which this reader does not admit (only "
                                    f"{self.kinds}); refused without running it")
        return self.admitted[path]

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids, which plain pickles do not hold."""
        raise pickle.UnpicklingError("a persistent id (a torch.save file, not a plain pickle)")


def _record_class(path: str) -> type[PickledRecord]:
    """A PickledRecord subclass that stands in for the class at `path`."""
    return type(path.rsplit(".", 1)[-1], (PickledRecord,), {"path": path, "__module__": __name__})


def read_pickle(path: Path, records: Collection[str], what: str, tensors: bool = False) -> Any:
    """The object pickled in `path`, the admitted globals only; `what` names the file kind in error messages."""
    source = f"{what} {str(path)!r}"
    admitted = {**ARRAYS, **(_tensors(source) if tensors else {}), **{name: _record_class(name) for name in records}}
    kinds = ", ".join(["NumPy arrays", *(["PyTorch tensors"] if tensors else []), *sorted(records)])
    try:
        with path.open("rb") as stream:
            return _Unpickler(stream, admitted, source, kinds).load()
    except UnsafePickleError:
        raise
    except OSError as err:
        raise CheckpointError(f"{source} cannot be read: {err.strerror or err}") from None
    except Exception as err:  # noqa: BLE001 - whatever a truncated or foreign pickle makes the unpickler raise
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "no further detail"
        raise CheckpointError(f"{source} is not a whole pickle ({type(err).__name__}: {reason}); expected a file "
                              "written by pickle.dump, complete") from None
