"""Real Slurm: a τ sweep through the submitit launcher, failing jobs, and preempted jobs that resume exactly."""

import json

import pytest
import torch

import slurm
from cli import (RESUMABLE, TINY, checkpoint_step, cli_env, net_params, read_csv, run_cli, start_cli,
                 wait_for_writes)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    yield from slurm.cluster(tmp_path_factory.mktemp("cluster"))


def test_sweep_runs_every_job_under_slurmd(slurm_conf, tmp_path):
    proc = run_cli("-m", "hardware=slurm_cpu", "topo.weight=0,5", *TINY, f"hydra.sweep.dir={tmp_path}",
                   env=cli_env(SLURM_CONF=slurm_conf))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Submitit 'slurm' sweep output dir" in proc.stdout
    for num, tau in ((0, 0), (1, 5)):
        run = tmp_path / str(num)
        for name in ["summary.json", "metrics.csv", "config_resolved.yaml", "checkpoints/last.ckpt"]:
            assert (run / name).is_file(), (run, name)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["topo"]["weight"] == tau and summary["optimizer_steps"] == 2
    logs = list((tmp_path / ".submitit").glob("*_*/*_0_log.out"))
    assert len(logs) == 2 and all("Job completed successfully" in p.read_text() for p in logs)


def test_a_failing_job_fails_the_sweep_naming_job_and_log(slurm_conf, tmp_path):
    proc = run_cli("-m", "hardware=slurm_cpu", "topo.weight=0,-1", *TINY, f"hydra.sweep.dir={tmp_path}",
                   env=cli_env(SLURM_CONF=slurm_conf))
    assert proc.returncode != 0
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("toponets_exp.errors.ConfigError: Slurm job")]
    assert "failed: topo.weight=-1 must be >= 0" in line
    job, log = line.split("Slurm job ")[1].split(" (log ")
    assert log.split(")")[0].endswith(f"{job}_0_log.err") and (tmp_path / ".submitit" / job).is_dir()
    assert (tmp_path / "0" / "summary.json").is_file() and not (tmp_path / "1" / "summary.json").exists()


def test_preempted_jobs_are_requeued_and_resume_exactly(slurm_conf, tmp_path):
    """Job 0 runs through; jobs 1 and 2 (the same training, other checkpoint cadences) are interrupted mid-run: by
    an outside `scontrol requeue` (TERM, then requeued) and by submitit's preemption signal (scancel --signal=USR2).
    Both end equal to job 0."""
    sweep = start_cli("-m", "hardware=slurm_cpu", "checkpoint.every_n_train_steps=4,2,3", *RESUMABLE,
                      f"hydra.sweep.dir={tmp_path}", env=cli_env(SLURM_CONF=slurm_conf), log=tmp_path / "sweep.log")
    jobs = {}
    for num, signal in ((1, ["scontrol", "requeue"]), (2, ["scancel", "--signal=USR2"])):
        wait_for_writes(tmp_path / str(num) / "checkpoints" / "last.ckpt", 1, sweep)
        (jobs[num],) = [j for j in slurm.squeue(slurm_conf, "-o", "%i").split() if j.endswith(f"_{num}")]
        assert slurm.slurm(slurm_conf, *signal, jobs[num]).returncode == 0
        slurm.start_when_requeued(slurm_conf, jobs[num])
    assert sweep.wait(timeout=600) == 0, (tmp_path / "sweep.log").read_text()[-3000:]

    whole = json.loads((tmp_path / "0" / "summary.json").read_text())
    first = net_params(tmp_path / "0/checkpoints/last.ckpt")
    for num in jobs:
        job_dir = tmp_path / str(num)
        resumed = json.loads((job_dir / "summary.json").read_text())
        assert resumed["resumed_from_step"] is not None and 0 < resumed["resumed_from_step"] < 18
        assert resumed["test"] == whole["test"] and resumed["topo"] == whole["topo"]
        second = net_params(job_dir / "checkpoints/last.ckpt")
        assert all(torch.equal(first[k], second[k]) for k in first)
        assert read_csv(job_dir / "metrics.csv") == read_csv(tmp_path / "0" / "metrics.csv")
        log = (job_dir / "run.log").read_text()
        assert f"Resuming {job_dir}" in log and checkpoint_step(job_dir / "checkpoints/last.ckpt") == 18
    log = (tmp_path / "2" / "run.log").read_text()
    assert "Caught SIGUSR2" in log and "Saved" in log
