"""The benchmark scripts run (smoke size) and end with their documented machine-readable line; the GPU check runs
end to end on the CPU."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAST_LINES = {  # script -> keys of its last line, in order
    "eval_bench.py": ["eval_seconds_total", "record_s", "smoothness_s", "ed_s", "selectivity_s"],
    "input_bench.py": ["images_per_s_folder", "images_per_s_prepared", "speedup_prepared_per_worker"],
    "peer_eval_bench.py": ["peer_eval_seconds", "peak_rss_gb", "units"],
    "loss_step_time.py": ["step_ms_tau0", "step_ratio_topoloss", "step_ratio_spatial_correlation",
                          "step_ratio_wiring"],
    "topoloss_bench.py": ["speedup_vs_official_resnet18", "speedup_vs_official_gpt", "callback_overhead_resnet18_pct",
                          "callback_overhead_gpt_pct", "hook_over_floor_resnet18", "hook_over_floor_gpt",
                          "overlap_overhead_resnet18_pct", "overlap_overhead_gpt_pct",
                          "overlap_hook_over_floor_resnet18", "overlap_hook_over_floor_gpt"],
    "train_throughput.py": ["images_per_s_tau0", "images_per_s_tau5", "images_per_s_tau5_overlap",
                            "hook_share_tau5_pct", "hook_share_tau5_overlap_pct"],
}
IN_GPU_CHECK = {"topoloss_bench.py": "topoloss_float32", "train_throughput.py": "throughput"}  # its stage logs
OPTIONAL = {"speedup_vs_official_resnet18", "speedup_vs_official_gpt"}  # nan without the official package


def check_last_line(script: str, stdout: str) -> None:
    """The script's documented last line: its keys in order, finite values."""
    pairs = [item.split("=", 1) for item in stdout.strip().splitlines()[-1].split()]
    assert [key for key, _ in pairs] == LAST_LINES[script]
    for key, value in pairs:
        assert math.isfinite(float(value)) or key in OPTIONAL, f"{key}={value}"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(set(LAST_LINES) - set(IN_GPU_CHECK)))
def test_benchmark_quick_run_prints_its_last_line(script: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_last_line(script, proc.stdout)
    if script == "eval_bench.py":
        assert "target < 5 s" in proc.stdout


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_the_cpu(tmp_path) -> None:
    """benchmarks/gpu_check.sh --device cpu --quick: the GPU tests on the CPU, the TopoLoss benchmark and the
    training throughput run, each stage's table in the summary and its log in --out."""
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--device", "cpu", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    tests = (tmp_path / "tests.log").read_text().strip().splitlines()[-1]  # pytest's closing line
    assert " passed" in tests and "failed" not in tests and "skipped" not in tests and "error" not in tests, tests
    for script, stage in IN_GPU_CHECK.items():
        check_last_line(script, (tmp_path / f"{stage}.log").read_text())
    assert "| τ | topo.overlap | images/s |" in proc.stdout and "throughput: exit 0" in proc.stdout
