"""The two-objective hypervolume against Optuna's own (minimisation, its private reference implementation) and a
count of dominated cells."""

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume

from toponets_exp.sweep_report.hypervolume import hypervolume_2d


def test_hypervolume_equals_optunas_and_a_cell_count() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        points = rng.integers(0, 20, size=(rng.integers(1, 12), 2)).astype(float)
        ours = hypervolume_2d([tuple(p) for p in points], (-1.0, -1.0))
        assert ours == pytest.approx(compute_hypervolume(-points, np.array([1.0, 1.0])))
        cells = sum(any(px >= x + 1 and py >= y + 1 for px, py in points) for x in range(-1, 20) for y in range(-1, 20))
        assert ours == cells


def test_directions_and_points_beyond_the_reference() -> None:
    assert hypervolume_2d([(0.9, 2.0), (0.8, 1.0)], (0.5, 3.0), ("maximize", "minimize")) == pytest.approx(
        0.4 * 1.0 + 0.3 * 1.0)
    assert hypervolume_2d([(0.4, 2.0)], (0.5, 3.0), ("maximize", "minimize")) == 0.0
    with pytest.raises(ValueError, match="each is maximize or minimize"):
        hypervolume_2d([(1, 1)], (0, 0), ("up", "maximize"))


def test_the_tool_tabulates_each_sets_front_and_hypervolume(tmp_path) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for num, (seed, acc, smooth) in enumerate([(0, 0.9, 0.1), (0, 0.5, 0.5), (1, 0.6, 0.2), (1, 0.4, 0.1)]):
        (tmp_path / "grid" / str(num)).mkdir(parents=True)
        (tmp_path / "grid" / str(num) / "summary.json").write_text(json.dumps(
            {"seed": seed, "best_score": acc, "eval": {"weight_smoothness": smooth}}))
    (tmp_path / "grid" / "4").mkdir()  # a run without a summary is left out
    proc = subprocess.run([sys.executable, "tools/front_hypervolume.py", str(tmp_path / "grid"), "--objective",
                           "best_score:maximize", "--objective", "eval.weight_smoothness:maximize", "--reference",
                           "0.1,0", "--by-seed"], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(" | ")[1:] for line in proc.stdout.splitlines()[2:]]
    assert [r[:3] for r in rows] == [["all", "4", "3"], ["0", "2", "2"], ["1", "2", "1"]]
    assert float(rows[0][3].rstrip(" |")) == pytest.approx(0.8 * 0.1 + 0.5 * 0.1 + 0.4 * 0.3)
    assert float(rows[2][3].rstrip(" |")) == pytest.approx(0.5 * 0.2)
