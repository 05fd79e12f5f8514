"""End to end: run.py in a subprocess on tiny settings."""

import json

import pytest
import torch

from cli import ROOT, TINY, read_csv, run_cli, run_python


@pytest.fixture(scope="module")
def trained(tiny_run):
    """The session's tiny run: `python run.py TINY seed=3 topo.weight=5` (conftest)."""
    return tiny_run


def test_train_writes_every_output(trained):
    out, stdout = trained
    for name in [".hydra/config.yaml", ".hydra/overrides.yaml", "config_resolved.yaml", "metrics.csv",
                 "summary.json", "run.log", "checkpoints/last.ckpt"]:
        assert (out / name).is_file(), name
    best = list((out / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1
    state = torch.load(best[0], weights_only=True, map_location="cpu")
    assert "net.layer1.0.conv1.weight" in state["state_dict"]
    assert state["callbacks"]["TopoLossCallback"]["schedule"]["step_count"] == 2

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["test"]) == {"acc", "loss"} and 0 <= summary["test"]["acc"] <= 1
    assert summary["topo"]["weight"] == 5 and len(summary["topo"]["per_layer"]) == 16
    assert summary["topo"]["total"] == pytest.approx(5 * summary["topo"]["mean_unweighted"], rel=1e-5)
    assert summary["best_checkpoint"] == str(best[0])

    rows = read_csv(out / "metrics.csv")
    columns = set().union(*rows)
    for key in ["train/loss_step", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc", "topo/total",
                "topo/layer1.0.conv1", "val_topo/layer4.1.conv2", "val_topo/mean"]:
        assert key in columns, key
    assert "Summary" in stdout and "test acc" in stdout and str(out) in stdout


def test_same_seed_same_metrics_other_seed_differs(trained, tmp_path):
    out, _ = trained
    again = run_cli(*TINY, "seed=3", "topo.weight=5", f"hydra.run.dir={tmp_path / 'a'}")
    other = run_cli(*TINY, "seed=4", "topo.weight=5", f"hydra.run.dir={tmp_path / 'b'}")
    assert again.returncode == 0 and other.returncode == 0
    first = json.loads((out / "summary.json").read_text())
    second = json.loads((tmp_path / "a" / "summary.json").read_text())
    third = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert (first["test"], first["topo"]) == (second["test"], second["topo"])
    assert read_csv(out / "metrics.csv") == read_csv(tmp_path / "a" / "metrics.csv")
    assert first["topo"]["per_layer"] != third["topo"]["per_layer"]


def test_local_multirun_three_taus(tmp_path):
    proc = run_cli("-m", *TINY, "topo.weight=0,1,5", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert f"tabulate them with: python run.py task=report report.sweep_dir={tmp_path.resolve()}" in proc.stdout
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(runs) == 3
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    assert [s["topo"]["weight"] for s in summaries] == [0, 1, 5]
    assert [o for o in summaries[1]["overrides"] if o.startswith("topo.")] == ["topo.weight=1"]
    assert "topo/total" not in set().union(*read_csv(runs[0] / "metrics.csv"))  # τ=0: no topo in training
    assert "topo/total" in set().union(*read_csv(runs[2] / "metrics.csv"))


BAD = [
    (["model=resnet999"], "Could not find 'model/resnet999'"),
    (["data=nope"], "Could not find 'data/nope'"),
    (["topo.layers=[nope*]"], "topo.layers[0]='nope*' matches no layer of ResNet. Layers with parameters: conv1"),
    (["topo.factor=9"], "layer 'layer1.0.conv1' (sheet 8x8 for 64 units)"),
    (["topo.weight=-1"], "topo.weight=-1 must be >= 0"),
    (["topo.layers=[layer1.0.bn1]"], "matches 'layer1.0.bn1' of type BatchNorm2d, which has no sheet"),
    (["topo.weight=abc"], "topo.weight='abc' is not a number"),
    (["seed=x"], "seed='x' must be an integer"),
    (["task=dance"], "task='dance' is not a task"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[b[0][0] for b in BAD])
def test_bad_input_clear_error_and_nothing_written(overrides, message, tmp_path):
    proc = run_cli(*TINY, *overrides, f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout[-2000:]
    assert "Traceback" not in proc.stdout
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "summary.json").exists()


def test_bad_run_in_an_existing_run_dir_overwrites_no_result(trained):
    out, _ = trained
    before = {p: p.read_bytes() for p in [out / "summary.json", out / "metrics.csv", out / "checkpoints/last.ckpt"]}
    proc = run_cli(*TINY, "topo.factor=9", f"hydra.run.dir={out}")
    assert proc.returncode == 2
    assert all(p.read_bytes() == content for p, content in before.items())


@pytest.mark.slow
def test_wandb_offline_run_files(tmp_path):
    proc = run_cli(*TINY, "logger=wandb", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert list(run_dir.glob("run-*.wandb")) and (tmp_path / "metrics.csv").is_file()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["wandb"] == [{"dir": str(run_dir), "url": None}]
    assert f"wandb sync {run_dir}" in proc.stdout
    for noise in ("LeafSpec", "💡 Tip", "anonymous setting", "`srun` command", "URL not available"):
        assert noise not in proc.stdout, noise  # third-party notices no user can act on


@pytest.mark.parametrize("override, message", [
    ("eval.smoothness=slope",
     "eval.smoothness='slope' is not supported; use one of near_minus_far, max_minus_min, tdann"),
    ("eval.selectivity_std=pooled", "eval.selectivity_std='pooled' is not supported; use one of sample, population"),
    ("eval.tdann.num_bins=0", "eval.tdann.num_bins=0 must be a positive integer"),
    ("eval.pruning=[0.5,2]", "eval.pruning=[0.5, 2] must be a list of sparsities in [0, 1]"),
    ("eval.orientation_preference=argmax",
     "eval.orientation_preference='argmax' is not supported; use one of vonmises, vector"),
    ("eval.layers=[layer9]", "eval.layers / eval.predictivity_layers name 'layer9', which is not a module of ResNet"),
])
def test_bad_eval_settings_are_one_clear_line(tiny_checkpoint, tmp_path, override, message):
    proc = run_cli("task=eval", f"ckpt_path={tiny_checkpoint}", "data.image_size=8", override,
                   f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert message in proc.stdout and "Traceback" not in proc.stdout
    assert not (tmp_path / "report.json").exists()


def test_an_internal_failure_keeps_its_traceback(tmp_path):
    """A bug is not a configuration error: a library ValueError surfaces with its traceback and exit status 1."""
    script = tmp_path / "bug.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from omegaconf import OmegaConf\n"
        "import toponets_exp.tasks as tasks\n"
        "from toponets_exp.brain import tdann_smoothness\n"
        "tasks._tasks = lambda: {'train': lambda cfg: tdann_smoothness([1.0, 2.0], (3, 3))}\n"
        "tasks.run(OmegaConf.create({'task': 'train'}))\n")
    proc = run_python(str(script), merged=False)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: values must hold one number per unit" in proc.stderr
    assert "Configuration error" not in proc.stderr


def test_help_lists_the_tasks_and_the_groups():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stdout[-2000:]
    lines = proc.stdout.splitlines()
    assert {line.split()[0] for line in lines if line.split()[:1] in (["train"], ["eval"], ["report"],
                                                                       ["prepare"])} == {"train", "eval", "report",
                                                                                         "prepare"}
    assert "== Configuration groups ==" in proc.stdout and "resume=<run dir>" in proc.stdout
