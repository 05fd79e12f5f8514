"""Sweep figures a reviewer accepts: y-ranges that do not blow noise up into trends, labelled axes, and the
efficiency curves drawn against the τ = 0 baseline and chance."""

from pathlib import Path

import numpy as np
import pytest

from toponets_exp.sweep_report import aggregate, plot_efficiency
from toponets_exp.sweep_report.figures import SD_SPAN, efficiency_figure, metrics_vs_tau_figure, y_range
from toponets_exp.sweep_report.runs import Run
from toponets_exp.sweep_report.table import METRICS

NONE = {m: None for m in METRICS}


def row(tau: float, seed: int, acc: float, smooth: float) -> dict:
    return {**NONE, "topo.weight": f"{tau:g}", "seed": seed, "tau": tau, "status": "finished", "test_acc": acc,
            "weight_smoothness": smooth}


def test_a_spread_below_the_seed_noise_looks_flat_and_every_panel_has_a_y_label() -> None:
    # accuracy moves 0.0004 across τ while seeds differ by ~0.01; smoothness rises clearly
    table = [row(t, s, 0.9 + 0.0001 * t + 0.01 * (s - 0.5), 0.1 + 0.05 * t + 0.001 * s)
             for t in (0.0, 1.0, 4.0) for s in (0, 1)]
    groups = aggregate(table, ["topo.weight", "seed"])
    fig = metrics_vs_tau_figure(table, groups, ["topo.weight", "seed"])
    acc, smooth = fig.axes[:2]
    assert acc.get_ylabel() == "test accuracy" and smooth.get_ylabel() == "weight smoothness"
    sd = float(np.sqrt(np.mean([g["test_acc_sd"] ** 2 for g in groups])))
    lo, hi = acc.get_ylim()
    assert hi - lo >= SD_SPAN * sd and hi - lo >= 0.05
    spread = max(g["test_acc"] for g in groups) - min(g["test_acc"] for g in groups)
    assert spread / (hi - lo) < 0.1  # the noise-level spread fills under a tenth of the panel
    lo, hi = smooth.get_ylim()
    values = [r["weight_smoothness"] for r in table]
    assert lo <= min(values) and max(values) <= hi and (max(values) - min(values)) / (hi - lo) > 0.8
    assert any(t.get_text() == f"seed sd {sd:.2g}" for t in acc.texts)


def test_y_range_without_seeds_uses_the_metric_floor() -> None:
    lo, hi = y_range([0.9001, 0.9005], "test_acc", None)
    assert hi - lo == pytest.approx(1.1 * 0.05) and lo < 0.9001 and hi > 0.9005
    assert y_range([0.99, 0.996], "test_acc", 0.01) == pytest.approx((1.0 - 1.1 * 6 * 0.01, 1.0))  # kept <= 1
    lo, hi = y_range([40.0, 40.5], "effective_dim", None)
    assert hi - lo == pytest.approx(1.1 * 0.05 * 40.25)


def run_with_curve(tmp_path: Path, num: int, tau: float, seed: int, accs: list[float]) -> Run:
    efficiency = {"metric": "accuracy", "pruning": {str(s): a for s, a in zip((0.0, 0.5, 0.9), accs)},
                  "chance": {"value": 0.1, "what": "1/10 classes"}}
    return Run(tmp_path, num, tmp_path / str(num), "finished", [f"topo.weight={tau:g}", f"seed={seed}"],
               {"topo": {"weight": tau}, "seed": seed}, {}, efficiency)


def test_efficiency_figure_has_the_tau0_baseline_dashed_and_chance(tmp_path: Path) -> None:
    runs = [run_with_curve(tmp_path, 0, 0.0, 0, [0.9, 0.7, 0.2]), run_with_curve(tmp_path, 1, 0.0, 1, [0.9, 0.6, 0.2]),
            run_with_curve(tmp_path, 2, 5.0, 0, [0.9, 0.85, 0.5]), run_with_curve(tmp_path, 3, 5.0, 1, [0.9, 0.8, 0.4])]
    fig = efficiency_figure(runs, ["topo.weight", "seed"])
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    base = lines["τ = 0 (baseline) (n=2)"]
    assert base.get_linestyle() == "--" and base.get_color() == "k"
    np.testing.assert_allclose(base.get_ydata(), [0.9, 0.65, 0.2])
    np.testing.assert_allclose(lines["τ = 5 (n=2)"].get_ydata(), [0.9, 0.825, 0.45])
    assert list(lines["chance (1/10 classes)"].get_ydata()) == [0.1, 0.1]
    assert "weights set to 0" in ax.get_xlabel() and ax.get_ylabel() == "accuracy"
    assert plot_efficiency(runs, ["topo.weight", "seed"], tmp_path / "efficiency.png").stat().st_size > 10_000
    assert efficiency_figure([], ["topo.weight"]) is None
