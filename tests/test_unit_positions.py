"""TDANN's and TopoLM's unit-position files: stand-ins pickled under the authors' class paths read back exactly;
pickles naming anything else are refused before it runs; damaged or inconsistent files fail in one line."""

from __future__ import annotations

import builtins
import contextlib
import os
import pickle
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from toponets_exp.errors import CheckpointError, UnsafePickleError
from toponets_exp.topo.unit_positions import (read_tdann_layer, read_tdann_positions, read_topolm_layer,
                                              read_topolm_positions)

from peer_standins import authors_classes, save_npz, save_pkl, tdann_layer, topolm_layer  # noqa: F401 - a fixture


def test_tdann_pkl_and_npz_of_one_layer_read_equal(tmp_path, authors_classes):
    record = tdann_layer()
    from_pkl = read_tdann_layer(save_pkl(record, tmp_path / "layer1.0.pkl"))
    from_npz = read_tdann_layer(save_npz(record, tmp_path / "layer1.0.npz"))
    assert pickle.dumps(record)[:80].count(b"spacetorch.models.positions") == 1
    for read in (from_pkl, from_npz):
        assert (read.name, read.dims, read.neighborhood_width) == ("layer1.0", (4, 3, 3), 1.626)
        assert read.coordinates.dtype == np.float64 and not read.coordinates.flags.writeable
        np.testing.assert_array_equal(read.coordinates, record.coordinates)
        np.testing.assert_array_equal(read.neighborhood_indices, record.neighborhood_indices)


def test_tdann_record_of_numpy_scalars_reads(tmp_path, authors_classes):
    record = tdann_layer()  # as swapopt re-saves a layer first read from an .npz: NumPy name, dims and width
    record.name, record.dims, record.neighborhood_width = np.str_("layer1.0"), np.array([4, 3, 3]), np.float64(0.5)
    read = read_tdann_layer(save_pkl(record, tmp_path / "layer1.0.pkl"))
    assert (read.name, read.dims, read.neighborhood_width) == ("layer1.0", (4, 3, 3), 0.5)


def test_tdann_directory_in_layer_order(tmp_path, authors_classes):
    names = ["layer4.1", "layer1.0", "layer2.1", "layer10.0"]
    for i, name in enumerate(names):
        record = tdann_layer(name, seed=i)
        save_pkl(record, tmp_path / f"{name}.pkl") if i % 2 else save_npz(record, tmp_path / f"{name}.npz")
    (tmp_path / "version.txt").write_text("2\n")
    layers = read_tdann_positions(tmp_path)
    assert list(layers) == ["layer1.0", "layer2.1", "layer4.1", "layer10.0"]
    np.testing.assert_array_equal(layers["layer2.1"].coordinates, tdann_layer("layer2.1", seed=2).coordinates)


@pytest.mark.parametrize("change, message", [
    (dict(dims=(4, 3, 2)), r"dims \(4, 3, 2\) make 24 units, the coordinates 36$"),
    (dict(dims=(0, 6, 6)), r"dims .* are not \(C, H, W\) or \(units,\) positive integers$"),
    (dict(coordinates=np.full((36, 2), np.nan)), r"36 units have non-finite coordinates$"),
    (dict(coordinates=np.zeros((36, 3))), r"coordinates have shape \(36, 3\), not \(units, 2\)$"),
    (dict(neighborhood_indices=np.array([[0, 36]])), r"neighborhood_indices are not .* indices of the 36 units$"),
    (dict(neighborhood_width=-1.0), r"neighborhood_width -1.0 is not a positive number \(mm\)$"),
    (dict(name="layer2.0"), r"holds the positions of 'layer2.0', not of 'layer1.0' its file name says$"),
])
def test_inconsistent_tdann_layers_are_refused(tmp_path, authors_classes, change, message):
    record = tdann_layer()
    for key, value in change.items():
        setattr(record, key, value)
    save_pkl(record, tmp_path / "layer1.0.pkl")
    with pytest.raises(CheckpointError, match=message) as err:
        read_tdann_positions(tmp_path)
    assert "\n" not in str(err.value)


def test_tdann_files_of_other_layouts_are_refused(tmp_path, authors_classes):
    save_pkl(vars(tdann_layer()), tmp_path / "dict.pkl")
    with pytest.raises(CheckpointError, match=r"holds a dict, not a spacetorch\.models\.positions\.LayerPositions$"):
        read_tdann_layer(tmp_path / "dict.pkl")
    np.savez(tmp_path / "short.npz", name="layer1.0", coordinates=np.zeros((4, 2)))
    with pytest.raises(CheckpointError, match=r"lacks dims, neighborhood_indices, neighborhood_width; TDANN's"):
        read_tdann_layer(tmp_path / "short.npz")
    np.savez(tmp_path / "objects.npz", **{**vars(tdann_layer()), "dims": np.array([(4, 3), 3], dtype=object)})
    with pytest.raises(CheckpointError, match=r"cannot be read as an \.npz of arrays \(ValueError: "):
        read_tdann_layer(tmp_path / "objects.npz")
    save_pkl(topolm_layer("layer.0.attn"), tmp_path / "topolm.pkl")
    with pytest.raises(UnsafePickleError, match=r"names positions\.LayerPositions, which this reader does not admit"):
        read_tdann_layer(tmp_path / "topolm.pkl")
    save_npz(tdann_layer(), tmp_path / "layer1.0.npz")
    save_pkl(tdann_layer(), tmp_path / "layer1.0.pkl")
    with pytest.raises(CheckpointError, match=r"holds layers layer1\.0 twice \(\.pkl and \.npz\)$"):
        read_tdann_positions(tmp_path)


def test_truncated_files_are_refused(tmp_path, authors_classes):
    for path in (save_pkl(tdann_layer(), tmp_path / "layer1.0.pkl"), save_npz(tdann_layer(), tmp_path / "l.npz")):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"is not a whole pickle \((EOFError|UnpicklingError): .*; expected"):
        read_tdann_layer(tmp_path / "layer1.0.pkl")
    with pytest.raises(CheckpointError, match=r"cannot be read as an \.npz of arrays \(BadZipFile: "):
        read_tdann_layer(tmp_path / "l.npz")


class Payload:
    """An object whose unpickling calls `call(*args)`, as a malicious pickle would."""

    def __init__(self, call: Any, *args: Any) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.call, self.args


def payloads(marker: Path) -> dict[str, Payload]:
    """Payloads that each create `marker` when run: os.system (pickled as posix.system), builtins.eval and a
    storage of torch.storage._load_from_bytes whose bytes are such a pickle."""
    shell = Payload(os.system, f"touch {marker}")
    evaluated = Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()")
    return {"system": shell, "eval": evaluated,
            "load_from_bytes": Payload(torch.storage._load_from_bytes, pickle.dumps(evaluated))}


@pytest.mark.parametrize("kind", ["system", "eval", "load_from_bytes"])
def test_pickles_that_run_code_are_refused_unrun(tmp_path, authors_classes, kind):
    marker = tmp_path / "ran"
    with contextlib.suppress(Exception):  # an ordinary unpickler runs it (and then may fail): the side effect shows
        pickle.loads(pickle.dumps(payloads(marker)[kind]))
    assert marker.exists()
    marker.unlink()
    hidden = tdann_layer()
    hidden.coordinates = payloads(marker)[kind]  # inside a well-formed record
    bare = payloads(marker)[kind]
    for path, read in ((save_pkl(bare, tmp_path / "bare.pkl"), read_topolm_layer),
                       (save_pkl(hidden, tmp_path / "layer1.0.pkl"), read_tdann_layer)):
        with pytest.raises(CheckpointError) as err:
            read(path)
        assert isinstance(err.value, UnsafePickleError) and "\n" not in str(err.value) and not marker.exists()
        if kind != "load_from_bytes" or read is read_tdann_layer:
            assert re.search(r" names (posix\.system|builtins\.eval|torch\.storage\._load_from_bytes), which this "
                             r"reader does not admit .*; refused without running it$", str(err.value))
        else:  # the TopoLM reader admits that function, but reads the bytes with torch.load(weights_only=True)
            assert re.search(r" holds tensor bytes that torch\.load\(weights_only=True\) refuses \(.*\); refused "
                             r"without running them$", str(err.value))


def test_topolm_directory_reads_its_tensors(tmp_path, authors_classes):
    names = [f"layer.{i}.{part}" for i in (0, 1, 10) for part in ("attn", "mlp")]
    for seed, name in enumerate(reversed(names)):
        save_pkl(topolm_layer(name, seed), tmp_path / f"{name}.pkl")
    assert pickle.dumps(topolm_layer("x"))[:40].count(b"positions") == 1
    layers = read_topolm_positions(tmp_path)
    assert list(layers) == names
    read, saved = layers["layer.1.mlp"], topolm_layer("layer.1.mlp", seed=2)
    np.testing.assert_array_equal(read.coordinates, saved.coordinates.numpy())
    np.testing.assert_array_equal(read.neighborhoods, saved.neighborhood_indices.numpy().astype(bool))
    assert read.neighborhoods.shape == (4, 16) and read.neighborhoods.sum(1).tolist() == [9] * 4
    assert read.neighborhoods_per_batch == 5 and read.coordinates.dtype == np.float64


@pytest.mark.parametrize("change, message", [
    (dict(neighborhood_indices=torch.full((4, 16), 2)), r"are not 0/1 masks \(neighbourhoods, 16 units\)$"),
    (dict(neighborhood_indices=torch.ones(4, 15, dtype=torch.long)), r"\(4, 15\) are not 0/1 masks"),
    (dict(neighborhoods_per_batch=0), r"neighborhoods_per_batch 0 is not a positive integer$"),
    (dict(coordinates=[[0.0, 1.0]] * 16), r"coordinates is a list, not a numeric array$"),
])
def test_inconsistent_topolm_layers_are_refused(tmp_path, authors_classes, change, message):
    record = topolm_layer("layer.0.attn")
    for key, value in change.items():
        setattr(record, key, value)
    with pytest.raises(CheckpointError, match=message):
        read_topolm_layer(save_pkl(record, tmp_path / "layer.0.attn.pkl"))


def test_topolm_files_of_other_layouts_are_refused(tmp_path, authors_classes):
    save_pkl(tdann_layer(), tmp_path / "tdann.pkl")
    with pytest.raises(UnsafePickleError, match=r"names spacetorch\.models\.positions\.LayerPositions, which this "):
        read_topolm_layer(tmp_path / "tdann.pkl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"holds no \.pkl layer files$"):
        read_topolm_positions(tmp_path / "empty")
    torch.save({"name": "layer.0.attn"}, tmp_path / "saved.pkl")
    with pytest.raises(CheckpointError, match=r"is not a whole pickle"):
        read_topolm_layer(tmp_path / "saved.pkl")
