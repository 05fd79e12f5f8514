"""The benchmark scripts run (smoke size) and end with their documented machine-readable line."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAST_LINES = {  # script -> keys of its last line, in order
    "eval_bench.py": ["eval_seconds_total", "record_s", "smoothness_s", "ed_s", "selectivity_s"],
    "input_bench.py": ["images_per_s_folder", "images_per_s_prepared", "speedup_prepared_per_worker"],
    "topoloss_bench.py": ["speedup_vs_official_resnet18", "speedup_vs_official_gpt", "callback_overhead_resnet18_pct",
                          "callback_overhead_gpt_pct", "hook_over_floor_resnet18", "hook_over_floor_gpt",
                          "overlap_overhead_resnet18_pct", "overlap_overhead_gpt_pct",
                          "overlap_hook_over_floor_resnet18", "overlap_hook_over_floor_gpt"],
}
OPTIONAL = {"speedup_vs_official_resnet18", "speedup_vs_official_gpt"}  # nan without the official package


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(LAST_LINES))
def test_benchmark_quick_run_prints_its_last_line(script: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pairs = [item.split("=", 1) for item in proc.stdout.strip().splitlines()[-1].split()]
    assert [key for key, _ in pairs] == LAST_LINES[script]
    for key, value in pairs:
        assert math.isfinite(float(value)) or key in OPTIONAL, f"{key}={value}"
    if script == "eval_bench.py":
        assert "target < 5 s" in proc.stdout
