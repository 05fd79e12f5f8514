"""TDANN's recipe as a run: positions made for every unit of the blocks, written in TDANN's format and read back,
TDANN's loss trained on them through the topo callback, exact resume, and one-line refusals of bad settings."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cli import checkpoint_step, net_params, read_csv, run_cli, start_cli, wait_for_writes
from test_experiments import composed
from toponets_exp.build.tdann import block_outputs
from toponets_exp.evaluation import task_data
from toponets_exp.evaluation.context import EvalContext
from toponets_exp.topo.tdann_hooks import TDANNLayer, TDANNSpatial
from toponets_exp.topo.tdann_layout import AREAS, TISSUE_MM, neighbourhood_width, retinotopic
from toponets_exp.topo.unit_positions import read_tdann_positions

BLOCKS = ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"]
TINY_TDANN = ["experiment=tdann_simclr_digits", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
              "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1", "data.image_size=8", "data.batch_size=16",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
              "topo.tdann.neighbourhoods=500", "topo.tdann.swapopt.steps=1000"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """(the directory, the output) of the embedded recipe on tiny settings, evaluated (one layer's maps)."""
    out = tmp_path_factory.mktemp("tdann") / "run"
    proc = run_cli(*TINY_TDANN, "trainer.max_epochs=1", "eval.gratings=false", "topo.layers=[layer4.1.conv1]",
                   f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return out, proc.stdout


def test_tdann_simclr_digits_trains_on_positions_it_writes_in_tdanns_format(trained) -> None:
    """The embedded recipe end to end on tiny settings: positions of every unit of the 8 blocks (C·H·W of each
    output) in <run dir>/positions as TDANN's .npz with version.txt 2, TDANN's loss logged per block at every step,
    and the read-out accuracy in summary.json and report.json."""
    out, stdout = trained
    positions = read_tdann_positions(out / "positions")
    assert list(positions) == BLOCKS and (out / "positions" / "version.txt").read_text() == "2\n"
    dims = {name: p.dims for name, p in positions.items()}
    assert dims["layer1.0"] == (64, 8, 8) and dims["layer4.1"] == (512, 1, 1)
    assert all(len(p.coordinates) == math.prod(p.dims) for p in positions.values())
    assert "TDANN swap optimisation of layer1.0" in stdout
    saved = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["callbacks"]["TopoLossCallback"]["weight"] == 1.0  # τ, the measured TopoLoss sheets at 0 aside
    rows = [r for r in read_csv(out / "metrics.csv") if r.get("spatial/total")]
    assert len(rows) == 3 and all(0.0 <= float(r[f"spatial/{b}"]) <= 1.0 for r in rows for b in BLOCKS)
    summary = json.loads((out / "summary.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert summary["eval"]["accuracy"] == report["accuracy"] and report["accuracy"]["source"] == "readout"
    assert 0.0 <= summary["eval"]["accuracy"]["value"] <= 1.0


def test_a_run_trains_on_a_given_positions_directory(trained, tmp_path) -> None:
    """topo.tdann.positions_dir: the run trains on that directory's positions (copied to its own), makes none; a
    directory of another input size is refused in one line naming the block, nothing trained."""
    first, second, refused = trained[0], tmp_path / "b", tmp_path / "c"
    args = [*TINY_TDANN, "trainer.max_epochs=1", "trainer.limit_train_batches=1", "eval.after_train=false"]
    proc = run_cli(*args, f"topo.tdann.positions_dir={first / 'positions'}", f"hydra.run.dir={second}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "TDANN swap optimisation" not in proc.stdout
    given, copied = read_tdann_positions(first / "positions"), read_tdann_positions(second / "positions")
    assert all(np.array_equal(given[b].coordinates, copied[b].coordinates) for b in BLOCKS)
    proc = run_cli(*args, "data.image_size=16", f"topo.tdann.positions_dir={first / 'positions'}",
                   f"hydra.run.dir={refused}")
    assert proc.returncode == 2 and "layer1.0's positions are of a (64, 8, 8) output; the block outputs " \
        "(64, 16, 16) here" in proc.stdout
    assert not (refused / "checkpoints").exists()


@pytest.mark.parametrize("override,message", [
    ("topo.tdann.layers=[layer5.0]", "topo.tdann.layers names layer5.0, not blocks of a ResNet-18"),
    ("+topo.tdann.radius=2", "topo.tdann has unknown key(s) radius"),
    ("topo.tdann.neighborhoods_per_batch=0", "topo.tdann.neighborhoods_per_batch"),
])
def test_bad_tdann_settings_are_one_line_errors(tmp_path, override, message) -> None:
    proc = run_cli(*TINY_TDANN, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and message in proc.stdout, proc.stdout[-2000:]
    assert not (tmp_path / "run" / "positions").exists()


def test_tdann_on_a_model_without_resnet_blocks_is_one_line(tmp_path) -> None:
    proc = run_cli("model=nanogpt", "data=text_embedded", "topo=tdann", "trainer.max_steps=1",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "topo.loss=tdann places the blocks of a ResNet-18 or -50" in proc.stdout, \
        proc.stdout[-2000:]


@pytest.mark.slow
def test_kill_9_then_resume_reads_its_positions_and_ends_identical(tmp_path) -> None:
    """last.ckpt every 2 steps over 2 epochs of 3 batches; kill -9 after the first, resume: the positions are read
    back from the run directory (not made again), and weights, metrics and summary equal the uninterrupted run's."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    args = [*TINY_TDANN, "trainer.max_epochs=2", "checkpoint.every_n_train_steps=2", "eval.after_train=false"]
    assert run_cli(*args, f"hydra.run.dir={whole}").returncode == 0
    proc = start_cli(*args, f"hydra.run.dir={cut}")
    wait_for_writes(cut / "checkpoints" / "last.ckpt", 1, proc)
    proc.kill()
    proc.wait()
    assert 0 < checkpoint_step(cut / "checkpoints" / "last.ckpt") < 6
    resumed = run_cli(*args, f"hydra.run.dir={cut}", f"resume={cut}")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "TDANN swap optimisation" not in resumed.stdout
    first, second = net_params(whole / "checkpoints/last.ckpt"), net_params(cut / "checkpoints/last.ckpt")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert read_csv(cut / "metrics.csv") == read_csv(whole / "metrics.csv")
    a, b = (json.loads((d / "summary.json").read_text()) for d in (whole, cut))
    assert a["test"] == b["test"] and a["topo"] == b["topo"] and a["optimizer_steps"] == b["optimizer_steps"] == 6


def test_tdann_imagenet_recipe_has_tdanns_settings() -> None:
    """experiment=tdann_simclr_resnet18_imagenet: TDANN's loss settings, batch, LR scaling, SyncBatchNorm and views;
    at 224 px its blocks output TDANN's OUTPUT_DIMS_FOR_224_INPUTS and their neighbourhoods are TDANN's widths."""
    cfg = composed("tdann_simclr_resnet18_imagenet", "hydra.runtime.output_dir=/tmp/out", "data.root=/data")
    plain = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    tdann = plain["topo"]["tdann"]
    assert plain["topo"]["loss"] == "tdann" and plain["topo"]["weight"] == 1.0 and tdann["layers"] == BLOCKS
    assert (tdann["layer_weight"], tdann["neighborhoods_per_batch"], tdann["use_old_version"]) == (0.25, 1, False)
    assert plain["data"]["batch_size"] == 128 and plain["trainer"]["devices"] == 4
    assert plain["trainer"]["sync_batchnorm"] is True
    assert plain["optim"]["lr"] == pytest.approx(0.3 * 128 * 4 / 256) and plain["trainer"]["max_epochs"] == 200
    assert plain["data"]["train_crop"] == "center" and plain["model"]["lit"]["views"]["blur_sigma"] == [0.1, 2.0]
    net = instantiate(cfg.model.net)
    dims = {k: tuple(v.shape[1:]) for k, v in block_outputs(net, torch.zeros(2, 3, 224, 224), tuple(BLOCKS)).items()}
    assert dims == {"layer1.0": (64, 56, 56), "layer1.1": (64, 56, 56), "layer2.0": (128, 28, 28),
                    "layer2.1": (128, 28, 28), "layer3.0": (256, 14, 14), "layer3.1": (256, 14, 14),
                    "layer4.0": (512, 7, 7), "layer4.1": (512, 7, 7)}
    widths = [neighbourhood_width(name, AREAS[18][name], dims[name][-1], True, TISSUE_MM[AREAS[18][name]])
              for name in BLOCKS]
    assert widths == [0.0475, 0.0475, 1.626, 1.626, 3.977, 2.545, 31.818, 31.818]


def test_compare_tdann_digits_sweeps_the_three_objectives() -> None:
    cfg = composed("compare_tdann_digits", "hydra.runtime.output_dir=/tmp/out")
    assert str(cfg.hydra.sweeper.params["topo"]) == "tdann,topoloss,off"
    assert str(cfg.hydra.sweeper.params["seed"]) == "0,1" and cfg.model.lit._target_ == "toponets_exp.lit.SimCLR"


def test_every_rank_trains_on_rank_zeros_positions() -> None:
    """TDANNSpatial.share: the positions the strategy broadcasts from rank 0 replace a rank's own (and the tensors
    made from them on a device)."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1))
    mine, theirs = (retinotopic({"layer1.0": (64, 4, 4)}, 18, seed, count=50)["layer1.0"] for seed in (0, 1))
    loss = TDANNSpatial([TDANNLayer("0", net[0], mine, 1.0, 0.25)])
    loss.layers[0].tensors(torch.device("cpu"))

    class RankZero:
        def broadcast(self, obj, src=0):
            assert src == 0
            return [theirs]

    loss.share(RankZero())
    coordinates, _ = loss.layers[0].tensors(torch.device("cpu"))
    assert loss.layers[0].positions is theirs and torch.equal(coordinates, torch.as_tensor(theirs.coordinates).float())


def test_a_trunk_takes_its_data_as_stimuli_and_scores_no_classifier() -> None:
    """task=eval of a SimCLR trunk (model.net.num_classes 0) on its data: the data are its stimuli (the read-out and
    the maps run) and the classifier's analyses say why they are skipped; with eval.stimuli the data stay unused."""
    cfg = composed("simclr_digits", "hydra.runtime.output_dir=/tmp/out")
    data = task_data(cfg, SimpleNamespace(config=cfg.model), "vision")
    assert data.datamodule is not None and data.misfit is None
    assert data.no_classifier == "the model is a trunk without a classifier (model.net.num_classes 0)"
    ctx = EvalContext(None, [], data.datamodule, None, None, {}, None, None, no_classifier=data.no_classifier)
    ctx.skip("task_accuracy", "the model's classifier")
    assert ctx.skipped["task_accuracy"] == f"needs the model's classifier; {data.no_classifier}"
    given = composed("simclr_digits", "hydra.runtime.output_dir=/tmp/out", "eval.stimuli=/stimuli")
    assert task_data(given, SimpleNamespace(config=given.model), "vision").datamodule is None
