"""task=report: a sweep's table and figures from its run directories, every run listed with its status."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from cli import TINY, read_csv, run_cli
from toponets_exp.sweep_report import aggregate, pareto_front
from toponets_exp.sweep_report.table import METRICS


def test_pareto_front_by_hand() -> None:
    points = [(0.1, 0.9), (0.5, 0.8), (0.4, 0.7), (0.9, 0.2), (0.5, 0.8), (0.2, 0.2)]
    #          front       front       under (0.5,0.8)  front   tie: front   dominated
    assert pareto_front(points) == [True, True, False, True, True, False]


def test_aggregate_means_and_sds_over_seeds() -> None:
    table = [{"topo.weight": t, "seed": s, "tau": float(t), "status": "finished", "test_acc": acc,
              **{m: None for m in METRICS if m != "test_acc"}}
             for t, s, acc in [("0", 0, 0.9), ("0", 1, 0.8), ("0", 2, 0.7), ("5", 0, 0.6)]]
    table.append({**table[-1], "seed": 1, "status": "failed", "test_acc": None})
    (zero, five) = aggregate(table, ["topo.weight", "seed"])
    assert zero["n"] == 3 and zero["test_acc"] == pytest.approx(0.8)
    assert zero["test_acc_sd"] == pytest.approx(np.std([0.9, 0.8, 0.7], ddof=1))
    assert five["n"] == 1 and five["test_acc"] == 0.6 and five["test_acc_sd"] is None


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real local sweep: τ=0 finishes, τ=-1 is refused (exit 2, ending the multirun), τ=5 never starts."""
    out = tmp_path_factory.mktemp("sweep")
    proc = run_cli("-m", "topo.weight=0,-1,5", *TINY, f"hydra.sweep.dir={out}")
    assert proc.returncode == 2, proc.stdout[-2000:]
    return out


@pytest.mark.slow
def test_report_lists_finished_failed_and_missing_runs(sweep, tmp_path) -> None:
    out = tmp_path / "report"
    proc = run_cli("task=report", f"report.sweep_dir={sweep}", "logger=wandb", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = read_csv(out / "report.csv")
    assert [(r["job"], r["topo.weight"], r["status"]) for r in rows] == [
        ("0", "0", "finished"), ("1", "-1", "failed"), ("2", "5", "missing")]
    finished = rows[0]
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert float(finished["test_acc"]) == summary["test"]["acc"]
    assert float(finished["topo_loss"]) == summary["topo"]["mean_unweighted"] and finished["model"] == "resnet18"
    text = (out / "report.md").read_text()
    assert "1 finished, 1 failed, 0 unfinished, 1 missing of 3 runs." in text
    assert "| topo.weight | n | test_acc |" in text
    for png in ("pareto.png", "metrics_vs_tau.png"):
        assert (out / "figures" / png).stat().st_size > 10_000
    assert "job 2 of" in proc.stdout and "is missing" in proc.stdout

    (offline,) = (out / "wandb").glob("offline-run-*")
    dump = subprocess.run([str(Path(sys.executable).with_name("wandb")), "leet", "inspect", "--json", str(offline)],
                          capture_output=True, text=True, check=True).stdout
    records = [json.loads(line) for line in dump.splitlines() if line.startswith("{")]
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["run_group"] == sweep.name and run["display_name"] == "report"
    items = [r["history"]["item"] for r in records if r["type"] == "history"]
    table = next(item for item in items if "report.nrows" in item)
    assert table["report._type"] == "table-file" and table["report.nrows"] == 3
    assert any("report/pareto._type" in item for item in items)


def test_report_of_a_directory_without_runs_is_a_clear_error(tmp_path) -> None:
    proc = run_cli("task=report", f"report.sweep_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    assert f"report.sweep_dir='{tmp_path}' holds no runs" in proc.stdout
    missing = run_cli("task=report", f"hydra.run.dir={tmp_path / 'out2'}")
    assert missing.returncode == 2 and "task=report needs a multirun directory" in missing.stdout


@pytest.mark.slow
def test_paper_trends_experiment_sweeps_and_reports_in_one_command(tmp_path) -> None:
    """The experiment's own τ × seed grid, narrowed on the command line (the command line wins per key), ends
    with its report written by the multirun itself."""
    proc = run_cli("-m", "experiment=paper_trends_digits", "topo.weight=0,5", "seed=0", *TINY,
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    info = OmegaConf.load(tmp_path / "sweep.yaml")
    assert list(info.varying) == ["topo.weight"]
    assert list(info.overrides[:2]) == ["topo.weight=0,5", "seed=0"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["0", "1"]
    table = (tmp_path / "report" / "report.csv").read_text().splitlines()
    assert len(table) == 3 and table[0].startswith("sweep,job,topo.weight")
    assert (tmp_path / "report" / "figures" / "metrics_vs_tau.png").is_file()


@pytest.mark.slow
def test_compare_experiment_reports_every_loss_in_one_table(tmp_path) -> None:
    """topo=topoloss,spatial_correlation,wiring × τ in one multirun: one report, a row per (loss, τ); the τ = 0 runs
    of the losses train identically; TopoLoss is measured on the other losses' layers too."""
    proc = run_cli("-m", "experiment=compare_topo_digits", "topo.weight=0,5", "seed=0", *TINY,
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert list(OmegaConf.load(tmp_path / "sweep.yaml").varying) == ["topo", "topo.weight"]
    with open(tmp_path / "report" / "report.csv", newline="") as f:
        table = list(csv.DictReader(f))
    losses = ("topoloss", "spatial_correlation", "wiring")
    assert [(r["topo"], r["topo.weight"], r["status"]) for r in table] == [
        (loss, tau, "finished") for loss in losses for tau in ("0", "5")]
    base_topo, _, base_spatial, spatial, base_wiring, wiring = table
    for base in (base_spatial, base_wiring):
        assert base_topo["test_acc"] == base["test_acc"] and base_topo["topo_loss"] == base["topo_loss"]
    for trained, base in ((spatial, base_spatial), (wiring, base_wiring)):
        assert trained["topo_loss"] and trained["topo_loss"] != base["topo_loss"]
    assert "| topo | topo.weight | n |" in (tmp_path / "report" / "report.md").read_text()
