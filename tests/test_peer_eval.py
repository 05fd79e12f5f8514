"""The field's published models evaluate in one command with their units at their own positions: TDANN's VISSL trunks
with TDANN's positions directories, TopoLM's checkpoints with TopoLM's position pickles (stand-ins in the exact
layouts); files that do not fit are refused in one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import models

from toponets_exp.evaluation.positioned import TDANN_RESCALE, read_position_set
from toponets_exp.evaluation.readout import linear_readout
from toponets_exp.evaluation.position_settings import PositionSettings, SampleSettings, WindowSettings
from toponets_exp.evaluation.recording import record_activations
from toponets_exp.models.nanogpt import gpt

from cli import run_cli
from test_unit_positions import Payload
from peer_standins import (RESNET18_AT_32PX, SpatialTrunk, authors_classes, save_npz, save_pkl,  # noqa: F401
                           save_topolm, save_vissl, simclr_file, tdann_positions, topolm_layer, topolm_state)

GRID_ONLY = {"weight_smoothness", "morans_i", "morans_i_topolm", "topoformer_tgi", "map_similarity_ssim"}


def stimuli(root, categories=("faces", "bodies", "places"), per=6, size=32):
    rng = np.random.default_rng(0)
    for k, category in enumerate(categories):
        (root / category).mkdir(parents=True)
        for i in range(per):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8) // (k + 1)  # categories differ in contrast
            Image.fromarray(image.astype(np.uint8)).save(root / category / f"{i}.png")
    return root


def settings(directory, rescale=True, max_units=60000):
    sample = SampleSettings(20, 50, 60.0, 0.5)
    return PositionSettings(str(directory), rescale, max_units, sample, sample,
                            WindowSettings(None, 4, 200, 0.0, 15))


def test_a_tdann_simclr_trunk_evaluates_at_its_positions_in_one_command(tmp_path, authors_classes):
    checkpoint, _ = simclr_file(tmp_path)
    positions = tdann_positions(tmp_path / "positions", RESNET18_AT_32PX)
    out = tmp_path / "eval"
    proc = run_cli("task=eval", "model=tdann_resnet", f"ckpt_path={checkpoint}", f"eval.positions.dir={positions}",
                   f"eval.stimuli={stimuli(tmp_path / 'stimuli')}", "eval.image_size=32", "eval.efficiency=false",
                   "eval.orientation_preference=vector", "eval.positions.orientation.max_units=300",
                   "eval.positions.selectivity.min_mean_response=0.0", "eval.positions.selectivity.num_samples=20",
                   "eval.positions.selectivity.sample_size=200", "eval.positions.windows.unit_number_limit=200",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["label"] == checkpoint.name and report["model"] == "toponets_exp.models.resnet.tdann_trunk"
    described = report["positions"]
    assert described["format"] == "tdann" and described["version"] == 1 and described["length_unit"] == "mm"
    assert described["scale"] == TDANN_RESCALE  # no version.txt: TDANN's analyses rescale the set per layer
    assert list(report["layers"]) == list(RESNET18_AT_32PX) == list(described["layers"])
    for name, entry in report["layers"].items():
        c, h, w = RESNET18_AT_32PX[name]
        assert entry["units"] == c * h * w == entry["units_recorded"]
        assert GRID_ONLY | {"pinwheels", "radial_spectrum_slope"} <= set(entry["left_out"])
        assert "weight_smoothness" not in entry and entry["map_similarity"]["ssim"] is None
        assert set(entry["selectivity"]) == {"faces", "bodies", "places"}
        for category in entry["selectivity"].values():
            assert "morans_i" not in category and 0.0 <= category["tdann_smoothness"] <= 1.0
            assert 0 < category["tdann_units_eligible"] <= entry["units"] and category["tdann_sample_size"] <= 200
            assert category["patches"] is not None and len(category["patch_areas_mm2"]) == category["patches"]
        assert entry["effective_dimensionality"] > 1.0
        assert entry["orientation"]["units_tuned"] == min(300, entry["units"])
    assert report["aggregate"]["left_out_layers"]["morans_i"] == len(RESNET18_AT_32PX)
    assert report["aggregate"]["pinwheels"] is None  # not counted (grid-only), rather than zero
    assert report["aggregate"]["tdann_maps_used"] == 3 * len(RESNET18_AT_32PX)
    readout = report["readout"]
    assert readout["layer"] == "avgpool" and readout["test"] == 9 and readout["train"] == 9
    assert report["accuracy"] == {"value": readout["accuracy"], "source": "readout",
                                  "what": "linear read-out of avgpool, 9 held-out stimuli"}
    assert {"figures/selectivity_layer1_0.png", "figures/orientation_layer4_1.png"} <= set(report["figures"])


def test_positions_of_another_model_are_refused_before_anything_is_written(tmp_path, authors_classes):
    checkpoint, _ = simclr_file(tmp_path)
    common = ["task=eval", "model=tdann_resnet", f"ckpt_path={checkpoint}", f"eval.stimuli={stimuli(tmp_path / 's')}",
              "eval.image_size=32"]
    wrong = {name: (c * 4, h, w) for name, (c, h, w) in RESNET18_AT_32PX.items()}  # a ResNet-50's channels
    cases = {
        "dims": (tdann_positions(tmp_path / "r50", wrong),
                 "eval.positions.dir does not fit the model: layer1.0 (16384 positions, 4096 units)"),
        "topolm": (tmp_path / "topolm",
                   "eval.positions.dir holds topolm layers layer.0.attn, layer.0.mlp, which name no module of ResNet"),
    }
    hostile = tdann_positions(tmp_path / "hostile", RESNET18_AT_32PX)
    marker = tmp_path / "ran"
    save_pkl(Payload(os.system, f"touch {marker}"), hostile / "layer2.0.pkl")  # a pickle that runs a command
    cases["pickle"] = (hostile, "layer2.0.pkl' names posix.system, which this reader does not admit")
    (tmp_path / "topolm").mkdir()
    for name in ("layer.0.attn", "layer.0.mlp"):
        save_pkl(topolm_layer(name), tmp_path / "topolm" / f"{name}.pkl")
    for case, (directory, message) in cases.items():
        out = tmp_path / f"out_{case}"
        proc = run_cli(*common, f"eval.positions.dir={directory}", f"hydra.run.dir={out}")
        assert proc.returncode == 2 and message in proc.stdout, (case, proc.stdout[-2000:])
        assert not out.exists()
    assert not marker.exists()


def test_tdann_sets_are_rescaled_as_tdann_analyses_read_them_and_large_layers_sampled(tmp_path, authors_classes):
    directory = tdann_positions(tmp_path / "p", {"layer1.0": (4, 3, 3), "layer4.1": (8, 2, 2)}, save=save_npz)
    raw = {name: np.load(directory / f"{name}.npz")["coordinates"] for name in ("layer1.0", "layer4.1")}
    scaled = read_position_set(settings(directory), seed=0)
    assert scaled.version == 1 and dict(scaled.scale) == {"layer1.0": 0.6, "layer4.1": 7.0}
    np.testing.assert_allclose(scaled.layers[0].coordinates, raw["layer1.0"] * 0.6)
    np.testing.assert_allclose(read_position_set(settings(directory, rescale=False), 0).layers[1].coordinates,
                               raw["layer4.1"])
    (directory / "version.txt").write_text("2\n")
    assert dict(read_position_set(settings(directory), 0).scale) == {}  # a later version is already at scale
    sampled = read_position_set(settings(directory, max_units=10), seed=5).layers[0]
    assert len(sampled.units) == 10 and np.all(np.diff(sampled.units) > 0) and sampled.total == 36
    np.testing.assert_allclose(sampled.coordinates, raw["layer1.0"][sampled.units])
    again = read_position_set(settings(directory, max_units=10), seed=5).layers[0]
    np.testing.assert_array_equal(sampled.units, again.units)


def topolm_directory(directory):
    directory.mkdir()
    for seed, name in enumerate(f"layer.{i}.{part}" for i in (0, 1) for part in ("attn", "mlp")):
        save_pkl(topolm_layer(name, seed), directory / f"{name}.pkl")
    return directory


def test_topolm_units_are_its_residual_stream_after_each_sublayer(tmp_path, authors_classes):
    positions = read_position_set(settings(topolm_directory(tmp_path / "p")), seed=0)
    assert [(l.name, l.module, l.record_input) for l in positions.layers] == [
        ("layer.0.attn", "transformer.h.0.ln_2", True), ("layer.0.mlp", "transformer.h.0", False),
        ("layer.1.attn", "transformer.h.1.ln_2", True), ("layer.1.mlp", "transformer.h.1", False)]
    torch.manual_seed(0)
    net = gpt(vocab_size=64, block_size=8, n_layer=2, n_head=2, n_embd=16).eval()
    ids = torch.randint(0, 64, (3, 8))
    seen = {}
    block = net.transformer.h[1]
    block.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    block.attn.register_forward_hook(lambda m, i, o: seen.update(attn=o))
    layer = positions.layers[2]
    recorded = record_activations(net, [layer.module], [ids], reduce="mean", units={layer.module: layer.units},
                                  inputs={layer.module}, forward=lambda m, b: m(b), progress=False)[layer.module]
    expected = (seen["x"] + seen["attn"]).mean(dim=1)  # TopoLM's attn_out = x + attn(ln_1(x)), with_resid: true
    torch.testing.assert_close(torch.from_numpy(recorded), expected[:, torch.from_numpy(layer.units)])
    sublayer = read_position_set(settings(tmp_path / "p"), seed=0, with_resid=False).layers[0]
    assert (sublayer.module, sublayer.record_input) == ("transformer.h.0.attn", False)


def test_a_topolm_checkpoint_evaluates_at_its_positions_in_one_command(tmp_path, authors_classes):
    checkpoint = save_topolm(tmp_path / "ckpt.pt", topolm_state(vocab=256), vocab_size=256)
    out = tmp_path / "eval"
    proc = run_cli("task=eval", "model=nanogpt", f"ckpt_path={checkpoint}",
                   f"eval.positions.dir={topolm_directory(tmp_path / 'positions')}", "eval.tokenizer=bytes",
                   "eval.n_sentences=24", "eval.efficiency=false", "eval.label=TopoLM stand-in",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["label"] == "TopoLM stand-in" and report["kind"] == "language"
    assert report["positions"]["format"] == "topolm" and report["positions"]["length_unit"] == "sheet cells"
    assert list(report["layers"]) == ["layer.0.attn", "layer.0.mlp", "layer.1.attn", "layer.1.mlp"]
    for entry in report["layers"].values():
        assert entry["units"] == 16 and GRID_ONLY <= set(entry["left_out"])
        selectivity = entry["language_selectivity"]
        assert 0.0 <= selectivity["fraction_sentence_selective"] + selectivity["fraction_nonword_selective"] <= 1.0
        assert selectivity["tdann_smoothness"] is None or 0.0 <= selectivity["tdann_smoothness"] <= 1.0
    assert "figures/language_selectivity_layer_1_mlp.png" in report["figures"]


def test_linear_readout_holds_out_a_stratified_split():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 10)
    features = rng.normal(size=(30, 5)) + np.repeat(np.eye(3, 5) * 10, 10, axis=0)
    result = linear_readout(features, labels, 0.4, seed=1)
    assert result["accuracy"] == 1.0 and (result["train"], result["test"]) == (18, 12)
    assert result["chance"] == pytest.approx(1 / 3)
    lone = linear_readout(features[:21], labels[:21], 0.5, seed=1)  # category c has one stimulus
    assert lone["accuracy"] is None and "2 stimuli each" in lone["why_none"]


def test_a_supervised_tdann_model_on_its_task_data_reports_its_classifier_accuracy(tmp_path, authors_classes):
    torch.manual_seed(0)
    base = models.resnet18(weights=None, num_classes=10)
    heads = {"0.clf.0.weight": base.fc.weight.detach(), "0.clf.0.bias": base.fc.bias.detach()}
    base.fc = torch.nn.Identity()
    checkpoint = save_vissl(tmp_path / "model_final_checkpoint_phase199.torch", SpatialTrunk(base).state_dict(),
                            heads)
    out = tmp_path / "eval"
    proc = run_cli("task=eval", "model=tdann_resnet", f"ckpt_path={checkpoint}", "data.image_size=32",
                   f"eval.positions.dir={tdann_positions(tmp_path / 'positions', RESNET18_AT_32PX)}",
                   "eval.gratings=false", "eval.max_per_category=3", "eval.metric_batches=2",
                   "eval.positions.selectivity.num_samples=5", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["architecture_from_checkpoint"] == {"depth": 18, "num_classes": 10}
    assert 0.0 <= report["task_accuracy"] <= 1.0 and report["n_stimuli"] == 30  # digits' test split as stimuli
    assert report["accuracy"] == {"value": report["task_accuracy"], "source": "classifier",
                                  "what": "the model's classifier, task test split"}
    assert report["readout"]["test"] == 15
    assert report["aggregate"]["left_out_layers"]["efficiency"] == len(RESNET18_AT_32PX)
