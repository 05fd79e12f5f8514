"""Real Slurm: a τ sweep through the submitit launcher, failing jobs, and preempted jobs that resume exactly.

The module's three sweeps are submitted together at its start (fixture `sweeps`), the preempted one first: their
jobs share the cluster's cores and fill each other's waits (a requeued job's restart, a job's start-up) instead of
waiting for one another; each test then reads its own sweep."""

import json
from pathlib import Path

import pytest
import torch

import slurm
from cli import RESUMABLE, TINY, checkpoint_step, cli_env, net_params, read_csv, start_cli

pytestmark = pytest.mark.slow
SWEEPS = {  # name -> the sweep's overrides (hardware=slurm_cpu, -m)
    # the same training as the session's uninterrupted run, with other checkpoint cadences; both jobs interrupted
    "preempted": ["checkpoint.every_n_train_steps=2,3", *RESUMABLE],
    "sweep": ["topo.weight=0,5", *TINY],
    "failing": ["topo.weight=0,-1", *TINY],
}


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    yield from slurm.cluster(tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def sweeps(slurm_conf, tmp_path_factory):
    """Every sweep of SWEEPS started (`python run.py -m hardware=slurm_cpu ...` in the background, its output in
    <name>.log beside its sweep directory); the preempted sweep's jobs are interrupted in a background thread as
    soon as each has written a checkpoint (`interrupted`). name -> (sweep dir, driver process)."""
    started = {}
    for name, overrides in SWEEPS.items():
        sweep = tmp_path_factory.mktemp(name) / "sweep"
        started[name] = (sweep, start_cli("-m", "hardware=slurm_cpu", *overrides, f"hydra.sweep.dir={sweep}",
                                          env=cli_env(SLURM_CONF=slurm_conf), log=sweep.with_suffix(".log")))
    sweep, driver = started["preempted"]
    # job 0 is requeued from outside (`scontrol requeue`: TERM, then requeued), job 1 gets submitit's preemption
    # signal (`scancel --signal=USR2`)
    interrupted = slurm.Background(lambda: {
        num: slurm.interrupt_after_checkpoint(slurm_conf, sweep, num, *command, driver=driver)
        for num, command in ((0, ["scontrol", "requeue"]), (1, ["scancel", "--signal=USR2"]))})
    yield started, interrupted
    for sweep, driver in started.values():
        slurm.stop_sweep(slurm_conf, sweep, driver)


def finished(sweeps, name: str) -> tuple[Path, int, str]:
    """The sweep `name` once its driver has ended: its directory, exit status and output."""
    sweep, driver = sweeps[0][name]
    status = driver.wait(timeout=900)
    return sweep, status, sweep.with_suffix(".log").read_text()


def test_sweep_runs_every_job_under_slurmd(sweeps):
    sweep, status, stdout = finished(sweeps, "sweep")
    assert status == 0, stdout[-3000:]
    assert "Submitit 'slurm' sweep output dir" in stdout
    for num, tau in ((0, 0), (1, 5)):
        run = sweep / str(num)
        for name in ["summary.json", "metrics.csv", "config_resolved.yaml", "checkpoints/last.ckpt"]:
            assert (run / name).is_file(), (run, name)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["topo"]["weight"] == tau and summary["optimizer_steps"] == 2
    logs = list((sweep / ".submitit").glob("*_*/*_0_log.out"))
    assert len(logs) == 2 and all("Job completed successfully" in p.read_text() for p in logs)


def test_a_failing_job_fails_the_sweep_naming_job_and_log(sweeps):
    sweep, status, stdout = finished(sweeps, "failing")
    assert status != 0
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("toponets_exp.errors.ConfigError: Slurm job")]
    assert "failed: topo.weight=-1 must be >= 0" in line
    job, log = line.split("Slurm job ")[1].split(" (log ")
    assert log.split(")")[0].endswith(f"{job}_0_log.err") and (sweep / ".submitit" / job).is_dir()
    assert (sweep / "0" / "summary.json").is_file() and not (sweep / "1" / "summary.json").exists()


def test_preempted_jobs_are_requeued_and_resume_exactly(sweeps, uninterrupted):
    """Two jobs of the uninterrupted run's training (other checkpoint cadences) are interrupted mid-run: job 0 by an
    outside `scontrol requeue` (TERM, then requeued), job 1 by submitit's preemption signal (scancel --signal=USR2).
    Both end equal to the uninterrupted local run: parameters, test metrics, TopoLoss and every metrics.csv row."""
    jobs = sweeps[1].result()
    sweep, status, stdout = finished(sweeps, "preempted")
    assert status == 0, stdout[-3000:]

    whole = json.loads((uninterrupted / "summary.json").read_text())
    first = net_params(uninterrupted / "checkpoints/last.ckpt")
    for num in jobs:
        job_dir = sweep / str(num)
        resumed = json.loads((job_dir / "summary.json").read_text())
        assert resumed["resumed_from_step"] is not None and 0 < resumed["resumed_from_step"] < 18
        assert resumed["test"] == whole["test"] and resumed["topo"] == whole["topo"]
        second = net_params(job_dir / "checkpoints/last.ckpt")
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
        assert read_csv(job_dir / "metrics.csv") == read_csv(uninterrupted / "metrics.csv")
        log = (job_dir / "run.log").read_text()
        assert f"Resuming {job_dir}" in log and checkpoint_step(job_dir / "checkpoints/last.ckpt") == 18
    log = (sweep / "1" / "run.log").read_text()
    assert "Caught SIGUSR2" in log and "Saved" in log
