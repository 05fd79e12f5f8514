"""W&B offline runs as sweep dashboards, read back with wandb's own reader of the .wandb transaction log."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli import RESUMABLE, TINY, checkpoint_step, run_cli, start_cli, wait_for_writes

pytestmark = pytest.mark.slow
WANDB = str(Path(sys.executable).with_name("wandb"))


def records(run_dir: Path) -> list[dict]:
    """Every record of an offline run (`wandb leet inspect --json`)."""
    out = subprocess.run([WANDB, "leet", "inspect", "--json", str(run_dir)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def history_keys(recs: list[dict]) -> set[str]:
    return {key for r in recs if r["type"] == "history" for key in r["history"]["item"]}


def summary_values(recs: list[dict]) -> dict:
    values = {}
    for r in recs:
        if r["type"] == "summary":
            values.update(r["summary"].get("update", {}))
    return values


def test_multirun_is_one_group_with_runs_named_by_their_overrides(tmp_path):
    sweep = tmp_path / "tau_sweep"
    proc = run_cli("-m", "logger=wandb", "topo.weight=0,5", *TINY, "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    ids = set()
    for num, tau in ((0, 0), (1, 5)):
        (offline,) = (sweep / str(num) / "wandb").glob("offline-run-*")
        recs = records(offline)
        (run,) = [r["run"] for r in recs if r["type"] == "run"]
        assert run["run_group"] == "tau_sweep" and run["display_name"] == f"topo.weight={tau}"
        config = {k: v for k, v in run["config"]["update"].items()}
        assert config["topo"]["weight"] == tau and config["model"]["net"]["_target_"].endswith("resnet18")
        keys = history_keys(recs)
        assert {"train/loss_step", "val/acc", "val_topo/mean"} <= keys
        assert ("topo/total" in keys) == (tau > 0)
        assert any(k.startswith("sheets/layer4.1.conv2") for k in keys)  # the weight-sheet images
        summary = summary_values(recs)
        assert "test/acc" in summary and "topo/final_mean_unweighted" in summary
        ids.add(run["run_id"])
        assert (sweep / str(num) / "wandb_run_id").read_text().strip() == run["run_id"]
    assert len(ids) == 2  # one run per job: nothing carried over from the first job to the second


def test_a_resumed_run_continues_its_wandb_run(tmp_path):
    out = tmp_path / "run"
    args = [*RESUMABLE, "checkpoint.every_n_train_steps=4", "logger=wandb", f"hydra.run.dir={out}"]
    proc = start_cli(*args)
    wait_for_writes(out / "checkpoints" / "last.ckpt", 1, proc)
    proc.kill()
    proc.wait()
    assert checkpoint_step(out / "checkpoints" / "last.ckpt") < 18
    resumed = run_cli(*args, f"resume={out}")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    run_ids = {r["run"]["run_id"] for path in runs for r in records(path) if r["type"] == "run"}
    assert run_ids == {(out / "wandb_run_id").read_text().strip()}
