"""End to end: evaluation after training and task=eval on a checkpoint, vision and language."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli import FAST_EVAL, TINY, run_cli

VISION_LAYER_KEYS = {"sheet", "weight_smoothness", "weight_similarity_curve", "effective_dimensionality",
                     "response_smoothness", "response_similarity_curve", "topoformer_tgi", "topoformer_tgi_per_cutoff",
                     "selectivity", "map_similarity", "orientation"}
LANGUAGE_LAYER_KEYS = {"sheet", "weight_smoothness", "weight_similarity_curve", "effective_dimensionality",
                       "response_smoothness", "response_similarity_curve", "topoformer_tgi", "language_selectivity"}


def check_figures(out, report, prefixes):
    assert report["figures"], "no figures"
    for rel in report["figures"]:
        with Image.open(out / rel) as img:
            assert img.size[0] > 200 and img.size[1] > 150
    stems = [rel.split("/")[-1] for rel in report["figures"]]
    for prefix in prefixes:
        assert any(s.startswith(prefix) for s in stems), prefix


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vision")
    proc = run_cli(*TINY, *FAST_EVAL, "eval.after_train=true", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return out, proc.stdout


def test_training_ends_with_evaluation(vision_run):
    out, stdout = vision_run
    summary = json.loads((out / "summary.json").read_text())
    assert {"weight_smoothness", "effective_dimensionality", "report"} <= set(summary["eval"])
    assert "weight smoothness" in stdout and "effective dimensionality" in stdout and "test acc" in stdout
    assert (out / "report.json").is_file()
    assert f"figures in {out / 'figures'}" in stdout  # where the evaluation put them
    assert f"outputs: {out} (summary.json, metrics.csv, checkpoints/, report.json, figures/)" in stdout
    # the 8x8 sheets too small for TDANN's 20 bins: one note in the report naming all four, no warning
    (note,) = [n for n in json.loads((out / "report.json").read_text())["notes"] if "too small" in n]
    assert "4 sheet(s) too small for eval.tdann.num_bins=20 (layer1.0.conv1 8x8, layer1.0.conv2 8x8, " in note
    assert not [ln for ln in stdout.splitlines() if "WARNING" in ln and "too small" in ln]


@pytest.mark.slow
def test_task_eval_vision_writes_every_key_and_figure(vision_run, tmp_path):
    train_dir, _ = vision_run
    proc = run_cli("task=eval", f"ckpt_path={train_dir / 'checkpoints' / 'last.ckpt'}", "data.image_size=8",
                   "data.batch_size=16", *FAST_EVAL, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["kind"] == "vision" and report["n_stimuli"] == 270 and len(report["categories"]) == 10
    assert report["topo_weight"] == json.loads((train_dir / "summary.json").read_text())["topo"]["weight"]
    assert set(report["aggregate"]) == {"weight_smoothness", "response_smoothness", "effective_dimensionality",
                                        "tdann_smoothness", "tdann_maps_used", "tdann_maps_left_out",
                                        "morans_i_topolm", "morans_i_topolm_maps_used", "morans_i_topolm_maps_left_out",
                                        "topoformer_tgi", "topoformer_tgi_layers_used",
                                        "topoformer_tgi_layers_left_out", "orientation_selective_fraction",
                                        "orientation_tdann_smoothness", "orientation_tdann_maps_used",
                                        "spatial_entropy", "spatial_entropy_maps_used", "cluster_radius",
                                        "cluster_radius_maps_used", "radial_spectrum_slope",
                                        "radial_spectrum_slope_maps_used", "pinwheel_density",
                                        "pinwheel_density_maps_used", "pinwheels", "orientation_maps",
                                        "patches", "patches_maps_used", "patches_maps_left_out"}
    agg = report["aggregate"]
    small = [name for name, entry in report["layers"].items() if entry["sheet"][0] * entry["sheet"][1] < 100]
    assert agg["topoformer_tgi_layers_left_out"] == len(small) == 4  # 8x8: no unit pair within 0.1 (a step is 1/8)
    assert all(report["layers"][name]["topoformer_tgi"] is None for name in small)
    assert agg["morans_i_topolm_maps_used"] == 160
    assert agg["orientation_maps"] == 16 and agg["orientation_tdann_maps_used"] == 12  # 8x8 sheets: unresolved
    assert report["gratings"]["images"] == 640 and report["gratings"]["size"] == 8
    assert report["gratings"]["input"] == "DigitsDataModule's size and standardisation"
    for entry in report["layers"].values():
        tuning = entry["orientation"]
        assert 0.0 <= tuning["fraction_selective"] <= tuning["fraction_responsive"] <= 1.0
        assert sum(tuning["preferred_frequency_counts"]) == entry["sheet"][0] * entry["sheet"][1]
        assert 0.0 <= tuning["spatial_entropy"] <= np.log(8)
        assert tuning["pinwheels"] == tuning["pinwheels_positive"] + tuning["pinwheels_negative"]
        assert "pinwheel_centres" not in tuning
    assert agg["pinwheels"] == sum(e["orientation"]["pinwheels"] for e in report["layers"].values())
    resolved = [sel["tdann_smoothness"] for entry in report["layers"].values()
                for sel in entry["selectivity"].values() if sel["tdann_bins"] >= 2]
    assert agg["tdann_maps_used"] == len(resolved) and agg["tdann_maps_used"] + agg["tdann_maps_left_out"] == 160
    assert agg["tdann_smoothness"] == pytest.approx(sum(resolved) / len(resolved))
    assert report["skipped"] == {} and report["architecture_from_checkpoint"] == {
        "num_classes": 10, "small_input": True, "blurpool": True}
    assert len(report["layers"]) == 16
    for entry in report["layers"].values():
        assert VISION_LAYER_KEYS <= set(entry)
        assert set(entry["selectivity"]) == {str(c) for c in range(10)}
        for sel in entry["selectivity"].values():
            assert {"morans_i", "morans_i_topolm", "tdann_smoothness", "tdann_bins", "fraction_selective",
                    "patches", "patch_areas"} <= set(sel)
            assert sel["patches"] is None or sel["patches"] == len(sel["patch_areas"])
        assert len(entry["map_similarity"]["pearson"]) == 10
    assert report["category_meaning"]["3"] == "class 3 (digit 3)"
    eff = report["efficiency"]
    assert eff["metric"] == "accuracy" and set(eff["pruning"]) == {"0.0", "0.5"}
    assert eff["chance"] == {"value": 0.1, "what": "1/10 classes"}
    assert [row["factor"] for row in eff["downsampling"]["curve"]] == [1, 2]
    assert eff["downsampling"]["curve"][1]["kept_fraction"] == pytest.approx(0.25)
    check_figures(tmp_path, report, ["weight_sheet_", "similarity_vs_distance", "selectivity_", "effective_dim",
                                     "pruning", "downsampling", "orientation_maps"])
    # The evaluation at the end of training analysed the trained objects in memory; reloading the same weights
    # (one epoch: last.ckpt holds the best epoch's weights) gives the same numbers.
    after_train = json.loads((train_dir / "report.json").read_text())
    assert after_train["aggregate"] == report["aggregate"]
    assert after_train["layers"] == report["layers"] and after_train["efficiency"] == report["efficiency"]


def test_the_trained_tau_comes_from_the_file_or_is_unknown(tmp_path):
    """report.json's τ: our checkpoint's TopoLossCallback state, else a TopoNets file name, else None (never the
    config's topo.weight); loading leaves the run's config unchanged."""
    import torch
    from omegaconf import OmegaConf

    from toponets_exp.evaluation.loading import load_for_eval, trained_topo_weight

    ours = {"callbacks": {"TopoLossCallback": {"weight": 0.5, "schedule": {}}}}
    assert trained_topo_weight(tmp_path / "last.ckpt", ours) == 0.5
    assert trained_topo_weight(tmp_path / "all_topo_tau_20.0.pt", {}) == 20.0
    assert trained_topo_weight(tmp_path / "tau_3.pt", {}) == 3.0
    assert trained_topo_weight(tmp_path / "resnet18.pt", {}) is None
    assert trained_topo_weight(tmp_path / "tau_3.pt.bak", {}) is None

    from toponets_exp.models import resnet18

    path = tmp_path / "plain.pt"
    torch.save(resnet18(num_classes=7, small_input=True).state_dict(), path)
    cfg = OmegaConf.create({
        "model": {"net": {"_target_": "toponets_exp.models.resnet18", "num_classes": 10, "small_input": True},
                  "eval": {"architecture": {"_target_": "toponets_exp.models.resnet.architecture",
                                            "_partial_": True}}},
        "eval": {"architecture_from_checkpoint": True},
        "topo": {"layers": ["layer4.*.conv*"], "factor": 2.0, "weight": 5.0, "loss": "topoloss"}})
    before = OmegaConf.to_yaml(cfg)
    loaded = load_for_eval(cfg, str(path))
    assert loaded.architecture["num_classes"] == 7 and loaded.config.net.num_classes == 7
    assert loaded.topo_weight is None and [layer.name for layer in loaded.layers] == [
        "layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"]
    assert OmegaConf.to_yaml(cfg) == before

    order = torch.randperm(512)  # a checkpoint of ours places layer4.0.conv1's units: its layers are read so
    net = {f"net.{k}": v for k, v in resnet18(num_classes=7, small_input=True).state_dict().items()}
    placed = {"state_dict": net, "callbacks": {"TopoLossCallback": {
        "weight": 5.0, "schedule": {}, "placements": {"layer4.0.conv1": order.tolist()}}}}
    torch.save(placed, tmp_path / "placed.ckpt")
    layers = load_for_eval(cfg, str(tmp_path / "placed.ckpt")).layers
    assert torch.equal(layers[0].order, order) and all(layer.order is None for layer in layers[1:])


def test_task_eval_needs_a_checkpoint(tmp_path):
    proc = run_cli("task=eval", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "task=eval needs ckpt_path=" in proc.stdout


@pytest.mark.slow
def test_language_training_and_evaluation(tmp_path):
    """3 steps, inside the first epoch: no validation, so no best checkpoint; the last weights are evaluated."""
    proc = run_cli("experiment=nanogpt_embedded", "model.net.n_layer=2", "model.net.n_embd=64", "model.net.n_head=2",
                   "data.block_size=64", "trainer.max_steps=3", "trainer.limit_val_batches=2",
                   "trainer.limit_test_batches=2", "eval.n_sentences=40", "trainer.enable_progress_bar=false",
                   *FAST_EVAL, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"loss", "ppl"} <= set(summary["test"]) and summary["best_checkpoint"] is None
    assert "no best checkpoint: the evaluation uses the last weights" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["checkpoint"] == str(tmp_path / "checkpoints" / "last.ckpt")
    assert report["kind"] == "language" and report["n_sentences"] == 40
    assert report["val_perplexity"] == pytest.approx(2.718281828 ** report["val_loss"], rel=1e-6)
    assert len(report["layers"]) == 2
    for entry in report["layers"].values():
        assert LANGUAGE_LAYER_KEYS <= set(entry)
    assert report["integration"]["layer"] == "transformer.h.1.mlp.c_fc"
    windows = report["integration"]
    assert len(windows["window"]) == len(windows["window_fitted"]) == len(windows["window_beyond_measured"]) == 256
    for window, fitted, beyond in zip(windows["window"], windows["window_fitted"], windows["window_beyond_measured"]):
        assert beyond == (fitted is not None and fitted > windows["max_distance_measured"])
        assert window == (None if beyond else fitted)
    assert report["efficiency"]["metric"] == "val loss"
    assert report["efficiency"]["chance"]["value"] == pytest.approx(5.545177444)  # ln 256: uniform over bytes
    check_figures(tmp_path, report, ["weight_sheet_", "similarity_vs_distance", "language_selectivity_",
                                     "integration_window_", "integration_model_", "effective_dim", "pruning",
                                     "downsampling"])


def test_data_split_caps_spread_categories_and_read_labels_without_images():
    import numpy as np
    import torch
    from torch.utils.data import Subset, TensorDataset

    from toponets_exp.data.vision import Transformed
    from toponets_exp.evaluation.stimuli import capped, spread_categories, split_targets

    assert spread_categories(1000, 20) == [round(i * 999 / 19) for i in range(20)]
    assert spread_categories(10, 20) == list(range(10)) and spread_categories(5, None) == list(range(5))
    labels = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1, 0, 3])
    base = TensorDataset(torch.zeros(10, 1), labels)
    wrapped = Subset(Transformed(base, lambda x: x), [9, 8, 7, 6, 5])
    np.testing.assert_array_equal(split_targets(wrapped), [3, 0, 1, 2, 2])
    assert capped(labels.numpy(), [0, 2], 2) == [0, 2, 4, 5]  # first two of each chosen category, in order
    assert capped(labels.numpy(), [1], None) == [1, 3, 7]


@pytest.mark.slow
def test_folder_stimuli_with_neural_data_give_predictivity(tiny_checkpoint, tmp_path):
    import numpy as np

    root = tmp_path / "stimuli"
    rng = np.random.default_rng(0)
    for category in ("faces", "houses"):
        (root / category).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / category / f"{i}.png")
    names = [f"{c}/{i}.png" for c in ("faces", "houses") for i in range(6)]
    np.savez(tmp_path / "neural.npz", responses=rng.normal(size=(12, 3)), stimuli=np.array(names))
    common = ["task=eval", f"ckpt_path={tiny_checkpoint}", f"eval.stimuli={root}", "eval.image_size=8",
              "data.image_size=8", f"eval.neural_data={tmp_path / 'neural.npz'}", "eval.cv_folds=2",
              "eval.efficiency=false"]
    out = tmp_path / "eval"
    proc = run_cli(*common, "eval.predictivity_layers=[layer4.1.conv2]", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["categories"] == ["faces", "houses"] and report["n_stimuli"] == 12
    assert list(report["predictivity"]) == ["layer4.1.conv2"]
    bad = run_cli(*common, "eval.predictivity_layers=[fc]", f"hydra.run.dir={tmp_path / 'bad'}")
    assert bad.returncode == 2 and "eval.predictivity_layers names 'fc', which is not recorded" in bad.stdout


def test_tdann_aggregate_leaves_out_maps_the_statistic_does_not_resolve():
    """A map whose curve keeps one bin before an empty one scores 1 by construction; one with infinite t has no
    value: neither enters the mean, and the counts say how many maps it used."""
    from toponets_exp.evaluation.aggregate import tdann_aggregate

    per_layer = {
        "small": {"selectivity": {"0": {"tdann_smoothness": 1.0, "tdann_bins": 1},
                                  "1": {"tdann_smoothness": 1.0, "tdann_bins": 1}}},
        "large": {"selectivity": {"0": {"tdann_smoothness": 0.2, "tdann_bins": 7},
                                  "1": {"tdann_smoothness": float("nan"), "tdann_bins": 0}}},
        "text": {"language_selectivity": {"tdann_smoothness": 0.4, "tdann_bins": 12}},
    }
    assert tdann_aggregate(per_layer) == {"tdann_smoothness": pytest.approx(0.3), "tdann_maps_used": 2,
                                          "tdann_maps_left_out": 3}
    assert tdann_aggregate({"small": per_layer["small"]})["tdann_smoothness"] is None


def test_map_and_layer_aggregates_count_what_they_leave_out():
    """TopoLM's Moran's I is undefined on a map with infinite t, Topoformer's TGI on a sheet of fewer than 100 units:
    the means leave those out and say how many they used."""
    from toponets_exp.evaluation.aggregate import layer_aggregate, map_aggregate

    per_layer = {
        "small": {"topoformer_tgi": None, "selectivity": {"0": {"morans_i_topolm": 0.5},
                                                          "1": {"morans_i_topolm": None}}},
        "large": {"topoformer_tgi": 0.3, "selectivity": {"0": {"morans_i_topolm": 0.1}}},
        "text": {"topoformer_tgi": 0.1, "language_selectivity": {"morans_i_topolm": float("nan")}},
    }
    assert map_aggregate(per_layer, "morans_i_topolm") == {
        "morans_i_topolm": pytest.approx(0.3), "morans_i_topolm_maps_used": 2, "morans_i_topolm_maps_left_out": 2}
    assert layer_aggregate(per_layer, "topoformer_tgi") == {
        "topoformer_tgi": pytest.approx(0.2), "topoformer_tgi_layers_used": 2, "topoformer_tgi_layers_left_out": 1}


def test_orientation_aggregate_leaves_out_undefined_maps():
    """TDANN smoothness only over resolved maps, each All-TNN statistic and the pinwheel density over the maps where
    they are defined, pinwheels summed."""
    from toponets_exp.evaluation.aggregate import orientation_aggregate

    def entry(selective, smooth, bins, radius, density, pinwheels):
        return {"orientation": {"fraction_selective": selective, "tdann_smoothness": smooth, "tdann_bins": bins,
                                "spatial_entropy": 1.0, "cluster_radius": radius, "radial_spectrum_slope": -2.0,
                                "pinwheel_density": density, "pinwheels": pinwheels}}

    per_layer = {"a": entry(0.2, 1.0, 1, float("nan"), None, None), "b": entry(0.4, 0.3, 5, 3.0, 2.0, 4),
                 "c": entry(0.6, 0.1, 5, 5.0, 4.0, 2), "text": {"topoformer_tgi": 0.1}}
    agg = orientation_aggregate(per_layer)
    assert agg["orientation_selective_fraction"] == pytest.approx(0.4)
    assert agg["orientation_tdann_smoothness"] == pytest.approx(0.2) and agg["orientation_tdann_maps_used"] == 2
    assert agg["cluster_radius"] == pytest.approx(4.0) and agg["cluster_radius_maps_used"] == 2
    assert agg["pinwheel_density"] == pytest.approx(3.0) and agg["pinwheel_density_maps_used"] == 2
    assert agg["pinwheels"] == 6 and agg["orientation_maps"] == 3 and agg["spatial_entropy_maps_used"] == 3
    assert orientation_aggregate({"text": {"topoformer_tgi": 0.1}}) == {}


@pytest.mark.parametrize("key, value", [("gratings", "yes"), ("efficiency", 1)])
def test_switches_of_the_evaluation_must_be_booleans(key, value):
    from omegaconf import OmegaConf

    from toponets_exp.errors import ConfigError
    from toponets_exp.evaluation.settings import eval_settings

    cfg = OmegaConf.create({"seed": 0, "eval": OmegaConf.load(Path(__file__).parents[1] / "conf/eval/auto.yaml")})
    assert eval_settings(cfg).gratings is True
    cfg.eval[key] = value
    with pytest.raises(ConfigError, match=f"eval.{key}={value!r} must be true or false"):
        eval_settings(cfg)


def default_eval_config(**model_eval):
    """The run's seed, eval.* at its defaults and a model.eval node."""
    from omegaconf import OmegaConf

    return OmegaConf.create({"seed": 0, "model": {"eval": model_eval},
                             "eval": OmegaConf.load(Path(__file__).parents[1] / "conf/eval/auto.yaml")})


def test_selectivity_figures_of_every_layer_share_one_colour_range(tmp_path, monkeypatch):
    """The caller sets one t range for all layers' figures: a weakly selective layer is not stretched to its own
    maximum, so colours compare across layers."""
    from types import SimpleNamespace

    import torch

    from toponets_exp.brain import sheet_plots
    from toponets_exp.evaluation.context import EvalContext
    from toponets_exp.evaluation.settings import eval_settings
    from toponets_exp.evaluation.vision_analyses import selectivity

    figures = {}
    monkeypatch.setattr(sheet_plots, "save_png", lambda fig, path: figures.setdefault(Path(path).name, fig))
    rng = np.random.default_rng(0)
    acts = {"weak": rng.normal(size=(60, 16)), "strong": rng.normal(size=(60, 32))}
    acts["strong"][:30, :8] += 4.0  # category 0 drives 8 units of the second layer hard
    ctx = EvalContext(net=torch.nn.Identity(), data=None, data_misfit=None, model_eval={}, figures=tmp_path,
                      layers=[SimpleNamespace(name="weak", sheet=(4, 4)), SimpleNamespace(name="strong", sheet=(4, 8))],
                      settings=eval_settings(default_eval_config()), device=torch.device("cpu"))
    selectivity(ctx, acts, np.repeat([0, 1], 30), ["0", "1"], {"0": "class 0", "1": "class 1"}, "60 images")
    assert set(figures) == {"selectivity_weak.png", "selectivity_strong.png"}
    panels = {name: [ax for ax in fig.axes if ax.get_images()] for name, fig in figures.items()}
    (clim,) = {ax.get_images()[0].get_clim() for axes in panels.values() for ax in axes}
    peak = {name: max(float(np.abs(ax.get_images()[0].get_array()).max()) for ax in axes)
            for name, axes in panels.items()}
    assert clim == (-peak["selectivity_strong.png"], peak["selectivity_strong.png"])
    assert peak["selectivity_weak.png"] < clim[1] / 2
    for fig in figures.values():
        assert f"±{clim[1]:.1f}" in fig.axes[-1].get_ylabel()


def test_settings_resolve_the_kind_and_refuse_a_language_model_without_its_context():
    from toponets_exp.errors import ConfigError
    from toponets_exp.evaluation.settings import eval_settings

    assert eval_settings(default_eval_config()).kind == "vision"
    assert eval_settings(default_eval_config(kind="language", context=64)).kind == "language"
    with pytest.raises(ConfigError, match=r"^model.eval.context is not set: a language model's yaml names"):
        eval_settings(default_eval_config(kind="language"))
    cfg = default_eval_config(context=None)
    cfg.eval.kind = "language"
    with pytest.raises(ConfigError, match=r"^model.eval.context is not set"):
        eval_settings(cfg)
    with pytest.raises(ConfigError, match=r"^model.eval.kind='audio' is not supported; use one of vision, language"):
        eval_settings(default_eval_config(kind="audio"))


def test_settings_check_the_files_they_name_before_a_model_is_built(tmp_path):
    from toponets_exp.errors import ConfigError
    from toponets_exp.evaluation.settings import eval_settings

    cfg = default_eval_config(kind="language", context=64)
    cfg.eval.sentences = str(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match=r"^eval.sentences=.*missing.txt' is not a file with one sentence per line"):
        eval_settings(cfg)
    cfg.eval.sentences, cfg.eval.blimp = None, str(tmp_path)
    with pytest.raises(ConfigError, match=r"^eval.blimp=.*: BLiMP directory .* holds no \*.jsonl files"):
        eval_settings(cfg)
    cfg = default_eval_config()
    np.savez(tmp_path / "neural.npz", responses=np.zeros((2, 3)))
    cfg.eval.neural_data = str(tmp_path / "neural.npz")
    with pytest.raises(ConfigError, match=r"^eval.neural_data neural.npz lacks \['stimuli'\]"):
        eval_settings(cfg)


def test_settings_are_frozen_with_lists_as_tuples():
    import dataclasses

    from toponets_exp.evaluation.settings import eval_settings

    settings = eval_settings(default_eval_config())
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_size = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tdann.num_bins = 2
    assert settings.pruning == (0.0, 0.2, 0.5, 0.8) and settings.layers == () and settings.seed == 0
    assert dataclasses.asdict(settings.tdann) == {"num_bins": 20, "num_samples": 1, "sample_size": None,
                                                  "distance_cutoff": None}


def test_a_report_goes_to_the_wandb_loggers_only(tmp_path):
    from unittest import mock

    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    from toponets_exp.loggers import log_report

    report = {"aggregate": {"weight_smoothness": 0.5, "tdann_smoothness": None, "tdann_maps_used": 3},
              "layers": {"fc": {"weight_smoothness": 0.25, "sheet": [2, 2]}},
              "figures": ["figures/effective_dim.png", "figures/weight_sheet_fc.png"]}
    wandb, csv = mock.create_autospec(WandbLogger, instance=True), mock.create_autospec(CSVLogger, instance=True)
    log_report([csv, wandb], report, tmp_path)
    wandb.log_metrics.assert_called_once_with({"eval/weight_smoothness": 0.5, "eval/tdann_maps_used": 3,
                                               "eval/fc/weight_smoothness": 0.25})
    assert wandb.log_image.call_args_list == [
        mock.call(key="eval/effective_dim", images=[str(tmp_path / "figures/effective_dim.png")]),
        mock.call(key="eval/weight_sheet_fc", images=[str(tmp_path / "figures/weight_sheet_fc.png")])]
    assert not csv.method_calls


def test_task_eval_refuses_an_unknown_topo_key_before_loading():
    from hydra import compose, initialize_config_dir

    from toponets_exp.errors import ConfigError
    from toponets_exp.tasks.eval import run_eval

    with initialize_config_dir(config_dir=str(Path(__file__).parents[1] / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["task=eval", "+topo.reduce=sum"])
    with pytest.raises(ConfigError, match=r"^topo has unknown key\(s\) reduce; accepted: loss, weight"):
        run_eval(cfg)
