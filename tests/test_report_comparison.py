"""task=report report.eval_dirs=[...]: evaluated models compared from their report.json, one row and one point each."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli import read_csv, run_cli

GRID_ONLY = {"weight_smoothness": 4, "morans_i": 4, "morans_i_topolm": 4, "topoformer_tgi": 4,
             "map_similarity_ssim": 4, "efficiency": 4}


def eval_report(label: str, kind: str = "vision", accuracy: float | None = None, source: str | None = None,
                what: str = "no classifier on the task's data and no read-out", readout: dict | None = None,
                positions: dict | None = None, tau: float | None = None, **aggregate: object) -> dict:
    """A report.json of task=eval, shaped as evaluation/evaluate.py writes it (the fields task=report reads)."""
    return {"task": "eval", "kind": kind, "label": label, "checkpoint": f"/ckpts/{label}.pt",
            "model": "toponets_exp.models.resnet.ResNet", "topo_weight": tau, "positions": positions,
            "accuracy": {"value": accuracy, "source": source, "what": what}, "readout": readout,
            "aggregate": {"effective_dimensionality": None, "weight_smoothness": None, "response_smoothness": None,
                          "tdann_smoothness": None, "tdann_maps_used": 0, "patches": None, **aggregate},
            "layers": {}, "figures": []}


TDANN_POSITIONS = {"format": "tdann", "length_unit": "mm", "dir": "/peers/tdann/positions", "version": 1}
TOPOLM_POSITIONS = {"format": "topolm", "length_unit": "sheet cells", "dir": "/peers/topolm/positions"}
READOUT = {"accuracy": 0.41, "test": 200, "train": 800, "layer": "base_model.layer4", "chance": 0.1}
MODELS = {
    "toponets": eval_report("TopoNets ResNet-18", accuracy=0.702, source="classifier", tau=5.0,
                            what="the model's classifier, task test split", weight_smoothness=0.8123,
                            response_smoothness=0.4, effective_dimensionality=21.456, tdann_smoothness=0.31,
                            tdann_maps_used=12, patches=1.5),
    "simclr": eval_report("TDANN SimCLR", accuracy=0.41, source="readout", readout=READOUT,
                          positions=TDANN_POSITIONS,
                          what="linear read-out of base_model.layer4, 200 held-out stimuli", response_smoothness=0.52,
                          effective_dimensionality=14.2, tdann_smoothness=0.44, tdann_maps_used=9, patches=2.25,
                          left_out_layers=GRID_ONLY),
    "supervised": eval_report("TDANN supervised", accuracy=0.655, source="classifier",
                              readout={**READOUT, "accuracy": 0.5}, positions=TDANN_POSITIONS,
                              what="the model's classifier, task test split", response_smoothness=0.47,
                              tdann_smoothness=0.39, tdann_maps_used=9, left_out_layers=GRID_ONLY),
    "topolm": {**eval_report("TopoLM", kind="language", positions=TOPOLM_POSITIONS, morans_i_topolm=0.61,
                             tdann_smoothness=0.2, left_out_layers={"weight_smoothness": 12, "morans_i": 12}),
               "val_loss": 3.45, "val_perplexity": 31.42, "blimp": {"accuracy": 0.7123}},
}


def write_eval_dirs(root: Path, reports: dict[str, dict]) -> list[Path]:
    """One evaluation directory per report, as task=eval leaves it."""
    dirs = []
    for name, report in reports.items():
        (root / name).mkdir(parents=True)
        (root / name / "report.json").write_text(json.dumps(report))
        dirs.append(root / name)
    return dirs


def report_cli(out: Path, *dirs: Path, extra: tuple[str, ...] = ()):
    """`python run.py task=report report.eval_dirs=[...]` into `out`."""
    return run_cli("task=report", f"report.eval_dirs=[{','.join(str(d) for d in dirs)}]", f"hydra.run.dir={out}",
                   *extra)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """The four models compared once: (output directory, eval dirs, the command's output)."""
    root = tmp_path_factory.mktemp("compare")
    dirs = write_eval_dirs(root / "evals", MODELS)
    proc = report_cli(root / "out", *dirs)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return root / "out", dirs, proc.stdout


def test_comparison_csv_has_a_row_per_model_with_its_numbers(compared) -> None:
    out, dirs, _ = compared
    rows = read_csv(out / "comparison.csv")
    assert [r["label"] for r in rows] == ["TopoNets ResNet-18", "TDANN SimCLR", "TDANN supervised", "TopoLM"]
    toponets, simclr, supervised, topolm = rows
    assert (toponets["kind"], toponets["units"], toponets["accuracy_source"]) == ("vision", "channel grid",
                                                                                  "classifier")
    assert float(toponets["accuracy"]) == 0.702 and float(toponets["tau"]) == 5.0
    assert float(toponets["weight_smoothness"]) == 0.8123 and float(toponets["effective_dim"]) == 21.456
    assert toponets["left_out"] == "" and toponets["eval_dir"] == str(dirs[0])
    assert (simclr["units"], simclr["accuracy_source"], simclr["readout_test"]) == ("TDANN positions (mm)",
                                                                                     "readout", "200")
    assert float(simclr["accuracy"]) == float(simclr["readout_accuracy"]) == 0.41
    assert simclr["weight_smoothness"] == "" and float(simclr["patches"]) == 2.25
    assert simclr["left_out"].split(", ") == list(GRID_ONLY)
    assert float(supervised["accuracy"]) == 0.655 and float(supervised["readout_accuracy"]) == 0.5
    assert (topolm["kind"], topolm["units"], topolm["accuracy"]) == ("language", "TopoLM positions (sheet cells)", "")
    assert float(topolm["morans_i_topolm"]) == 0.61 and topolm["tau"] == ""
    assert float(topolm["val_perplexity"]) == 31.42 and float(topolm["blimp_accuracy"]) == 0.7123
    assert toponets["val_perplexity"] == toponets["blimp_accuracy"] == ""


def test_comparison_markdown_has_the_table_and_a_line_per_model(compared) -> None:
    out, dirs, stdout = compared
    lines = (out / "comparison.md").read_text().splitlines()
    assert ("| label | kind | units | accuracy | accuracy_source | readout_accuracy | tau | val_perplexity | "
            "blimp_accuracy | weight_smoothness | response_smoothness | effective_dim | tdann_smoothness | "
            "morans_i_topolm | patches |") in lines
    (toponets,) = [line for line in lines if line.startswith("| TopoNets ResNet-18 |")]
    assert toponets.endswith("| 0.702 | classifier | n/a | 5 | n/a | n/a | 0.812 | 0.4 | 21.5 | 0.31 | n/a | 1.5 |")
    (topolm,) = [line for line in lines if line.startswith("| TopoLM |")]
    assert "| language | TopoLM positions (sheet cells) | n/a | n/a | n/a | n/a | 31.4 | 0.712 | n/a |" in topolm
    assert f"- TDANN SimCLR: accuracy: linear read-out of base_model.layer4, 200 held-out stimuli; left out as " \
           f"grid-only: {', '.join(GRID_ONLY)} ({dirs[1]})" in lines
    assert f"- TopoNets ResNet-18: accuracy: the model's classifier, task test split; no measure left out " \
           f"({dirs[0]})" in lines
    assert "- TopoLM: accuracy: no classifier on the task's data and no read-out; left out as grid-only: " \
           "weight_smoothness, morans_i" in (out / "comparison.md").read_text()
    assert "Comparison of 4 models (3 with an accuracy, drawn)" in stdout and str(out / "comparison.md") in stdout
    assert not (out / "report.csv").exists()


def test_comparison_figure_is_a_real_image(compared) -> None:
    out, _, _ = compared
    with Image.open(out / "figures" / "comparison.png") as png:
        png.verify()
    with Image.open(out / "figures" / "comparison.png") as png:
        width, height = png.size
    assert 1000 < width < 4000 and 600 < height < 4000  # 3 columns of panels, 2 rows


def test_comparison_figure_marks_accuracy_source_and_units() -> None:
    """Read-outs are triangles, classifiers circles; the peers' positions hollow; models without accuracy left out
    and counted in the title."""
    from toponets_exp.sweep_report.comparison import comparison_figure, row

    table = [row(report, name) for name, report in MODELS.items()]
    fig = comparison_figure(table)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in panels] == [
        "weight smoothness", "response smoothness", "effective dimensionality",
        "TDANN smoothness of the selectivity maps", "category patches per selectivity map (TDANN)"]
    assert "3 models; 1 without an accuracy left out" in fig._suptitle.get_text()
    points = {text.get_text(): line for ax in panels[1:2] for text, line in zip(ax.texts, ax.lines)}
    assert sorted(points) == ["TDANN SimCLR", "TDANN supervised", "TopoNets ResNet-18"]
    assert points["TDANN SimCLR"].get_marker() == "^" and points["TDANN supervised"].get_marker() == "o"
    assert points["TDANN supervised"].get_markerfacecolor() == "none"
    assert points["TopoNets ResNet-18"].get_markerfacecolor() != "none"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["classifier, task test split", "linear read-out, 200 held-out stimuli",
                      "filled: channel grid", "hollow: the peer's own unit positions"]


def fake_sweep(root: Path) -> Path:
    """A multirun directory of one finished job, as task=report reads it."""
    job = root / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- topo.weight=5\n")
    (job / "config_resolved.yaml").write_text("topo: {weight: 5.0}\nseed: 0\nmodel: {net: {_target_: a.ResNet}}\n")
    (job / "summary.json").write_text(json.dumps({"test": {"acc": 0.7}, "topo": {"mean_unweighted": 0.2},
                                                  "wall_time_s": 3.0}))
    return root / "sweep"


def test_same_labels_are_told_apart_and_a_sweep_and_models_are_both_reported(tmp_path) -> None:
    """A label given twice becomes `label (2)`; with report.sweep_dir too, both reports are written and W&B gets
    both tables and every figure in one run."""
    dirs = write_eval_dirs(tmp_path, {"a": MODELS["toponets"], "b": MODELS["toponets"]})
    out = tmp_path / "out"
    proc = report_cli(out, *dirs, extra=(f"report.sweep_dir={fake_sweep(tmp_path)}", "logger=wandb"))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [r["label"] for r in read_csv(out / "comparison.csv")] == ["TopoNets ResNet-18", "TopoNets ResNet-18 (2)"]
    assert f"the one in {dirs[1]} is 'TopoNets ResNet-18 (2)'" in proc.stdout
    assert [r["status"] for r in read_csv(out / "report.csv")] == ["finished"]
    assert (out / "figures" / "comparison.png").is_file() and (out / "figures" / "pareto.png").is_file()
    (offline,) = (out / "wandb").glob("offline-run-*")
    dump = subprocess.run([str(Path(sys.executable).with_name("wandb")), "leet", "inspect", "--json", str(offline)],
                          capture_output=True, text=True, check=True).stdout
    records = [json.loads(line) for line in dump.splitlines() if line.startswith("{")]
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["run_group"] == "sweep" and run["display_name"] == "report"
    items = {k: v for r in records if r["type"] == "history" for k, v in r["history"]["item"].items()}
    assert items["comparison.nrows"] == 2 and items["report.nrows"] == 1
    assert "report/comparison._type" in items and "report/pareto._type" in items


@pytest.mark.parametrize("case", ["missing", "no_report", "train_summary", "not_json"])
def test_a_directory_that_is_not_an_evaluation_is_refused_in_one_line(tmp_path, case) -> None:
    (good,) = write_eval_dirs(tmp_path, {"good": MODELS["toponets"]})
    bad = tmp_path / "bad"
    if case != "missing":
        bad.mkdir()
    if case == "train_summary":
        (bad / "report.json").write_text(json.dumps({"test": {"acc": 0.7}, "topo": {"mean_unweighted": 0.1}}))
    elif case == "not_json":
        (bad / "report.json").write_text("{")
    out = tmp_path / "out"
    proc = report_cli(out, good, bad)
    assert proc.returncode == 2, proc.stdout[-3000:]
    (error,) = [line for line in proc.stdout.splitlines() if "Configuration error" in line]
    expected = {"missing": f"report.eval_dirs: '{bad}' is not a directory",
                "no_report": f"report.eval_dirs: '{bad}' holds no report.json",
                "train_summary": f"report.eval_dirs: the report.json of '{bad}' is not a task=eval report (task: None)",
                "not_json": f"report.eval_dirs: '{bad}' has a report.json that is not JSON"}[case]
    assert expected in error and "expected the output directory of a task=eval run" in error
    assert "Traceback" not in proc.stdout and not out.exists()


def test_without_sweep_or_models_the_error_names_both_keys(tmp_path) -> None:
    proc = run_cli("task=report", "report.eval_dirs=[]", f"hydra.run.dir={tmp_path / 'out'}")
    assert proc.returncode == 2 and not (tmp_path / "out").exists()
    (error,) = [line for line in proc.stdout.splitlines() if "Configuration error" in line]
    assert "report.sweep_dir=None, report.eval_dirs=[]: task=report needs a multirun directory" in error
    assert "report.eval_dirs=[dirA,dirB]" in error
