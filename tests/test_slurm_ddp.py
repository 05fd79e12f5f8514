"""Real Slurm, several ranks: two-rank DDP jobs requeued or preempted mid-run, and a two-node job, each ending equal
to the local two-process run on the same global batch.

The module's runs start together at its start (fixture `runs`): the local two-process reference, the sweep of
two-rank jobs (partition debug) and the two-node job (partition twonode). A job requeued with TERM ends only when
Slurm kills it (KillWait); the other runs use the cores meanwhile instead of waiting for it."""

import json
from pathlib import Path

import pytest
import torch

import slurm
from cli import RESUMABLE, checkpoint_step, cli_env, net_params, read_csv, start_cli

pytestmark = pytest.mark.slow
TWO_RANKS = ["hardware=slurm_cpu", "trainer.devices=2", "trainer.strategy=ddp"]
TWO_NODES = ["hardware=slurm_cpu", "trainer.num_nodes=2", "trainer.devices=1", "trainer.strategy=ddp",
             "hydra.launcher.partition=twonode"]
SYNC_WARNING = "It is recommended to use `self.log("


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    yield from slurm.cluster(tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def runs(slurm_conf, tmp_path_factory):
    """The module's runs, started together; each sweep's jobs interrupted in a background thread as soon as each has
    written a checkpoint. name -> (directory, process, interrupted jobs: Background of {num: job id})."""
    started = {}
    local = tmp_path_factory.mktemp("local_ddp") / "run"
    # the same training as two local processes (hardware=ddp_cpu, gloo): the reference of every Slurm job
    started["local_ddp"] = (local, start_cli("hardware=ddp_cpu", *RESUMABLE, f"hydra.run.dir={local}",
                                             log=local.with_suffix(".log")), None)
    # three two-rank jobs of one sweep: job 0 runs through; job 1 is requeued from outside (`scontrol requeue`, TERM
    # to both ranks); job 2 gets submitit's preemption signal (USR2)
    sweep = tmp_path_factory.mktemp("two_ranks") / "sweep"
    driver = start_cli("-m", *TWO_RANKS, "checkpoint.every_n_train_steps=4,2,3", *RESUMABLE,
                       f"hydra.sweep.dir={sweep}", env=cli_env(SLURM_CONF=slurm_conf), log=sweep.with_suffix(".log"))
    started["two_ranks"] = (sweep, driver, slurm.Background(lambda sweep=sweep, driver=driver: {
        num: slurm.interrupt_after_checkpoint(slurm_conf, sweep, num, *command, driver=driver)
        for num, command in ((1, ["scontrol", "requeue"]), (2, ["scancel", "--signal=USR2"]))}))
    # one rank on each of two Slurm nodes, requeued mid-run. Lightning gives each process the machine's cores over
    # its node's processes (here 2, there 1), and CPU kernels round by thread count: the job is given the local
    # run's one thread per process (Slurm passes the submitting environment on).
    sweep = tmp_path_factory.mktemp("two_nodes") / "sweep"
    driver = start_cli("-m", *TWO_NODES, "checkpoint.every_n_train_steps=2", *RESUMABLE, f"hydra.sweep.dir={sweep}",
                       env=cli_env(SLURM_CONF=slurm_conf, OMP_NUM_THREADS="1"), log=sweep.with_suffix(".log"))
    started["two_nodes"] = (sweep, driver, slurm.Background(
        lambda sweep=sweep, driver=driver: {0: slurm.interrupt_after_checkpoint(
            slurm_conf, sweep, None, "scontrol", "requeue", driver=driver)}))  # the sweep's only job: no array
    yield started
    for name in ("two_ranks", "two_nodes"):
        slurm.stop_sweep(slurm_conf, *started[name][:2])
    local_run = started["local_ddp"][1]
    if local_run.poll() is None:
        local_run.kill()
        local_run.wait()


def finished(runs, name: str) -> tuple[Path, dict[int, str]]:
    """The run or sweep `name` once it has ended with status 0 (its output otherwise), with its interrupted jobs."""
    path, proc, interrupted = runs[name]
    jobs = interrupted.result() if interrupted is not None else {}
    assert proc.wait(timeout=900) == 0, path.with_suffix(".log").read_text()[-3000:]
    return path, jobs


@pytest.fixture(scope="module")
def local_ddp(runs) -> Path:
    """The local two-process run, finished; its output shows rank 0's info lines once and no sync warning."""
    out, _ = finished(runs, "local_ddp")
    stdout = out.with_suffix(".log").read_text()
    assert SYNC_WARNING not in stdout
    assert stdout.count("TopoLoss on 16 layers") == 1  # rank 1's info lines stay out of the log
    return out


def assert_same_run(run: Path, reference: Path) -> None:
    """Parameters (torch.equal), test metrics, TopoLoss and every metrics.csv row of two finished runs agree."""
    ours, ref = (json.loads((d / "summary.json").read_text()) for d in (run, reference))
    assert ours["test"] == ref["test"] and ours["topo"] == ref["topo"] and ours["optimizer_steps"] == 18
    a, b = net_params(run / "checkpoints/last.ckpt"), net_params(reference / "checkpoints/last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_csv(run / "metrics.csv") == read_csv(reference / "metrics.csv")


def job_logs(sweep: Path, job: str) -> str:
    """Every task's stdout and stderr of a job (all its starts)."""
    return "".join(p.read_text() for p in sorted((sweep / ".submitit" / job).glob("*_log.*")))


def test_two_rank_jobs_requeued_or_preempted_end_equal_to_local_ddp(runs, local_ddp):
    """Three two-rank jobs of one sweep: job 0 runs through; job 1 is requeued from outside (`scontrol requeue`,
    TERM to both ranks); job 2 gets submitit's preemption signal (USR2). All three end equal to the local two-process
    run; rank 0 alone truncates metrics.csv on resume; rank 1's warnings reach run.log marked; no validation logs a
    sync warning."""
    sweep, jobs = finished(runs, "two_ranks")
    for num in (0, 1, 2):
        assert_same_run(sweep / str(num), local_ddp)
    for num, job in jobs.items():
        run = sweep / str(num)
        resumed = json.loads((run / "summary.json").read_text())
        assert 0 < resumed["resumed_from_step"] < 18 and checkpoint_step(run / "checkpoints/last.ckpt") == 18
        log = (run / "run.log").read_text()
        assert log.count("metric rows after it dropped") == 1, log  # rank 0's, once
        logs = job_logs(sweep, job)
        assert "global_rank=1(2)" in logs and SYNC_WARNING not in logs
    preempted_log = (sweep / "2" / "run.log").read_text().splitlines()
    assert any("Caught SIGUSR2" in line for line in preempted_log)
    # rank 1's own warning, marked: it saves at the step both ranks stop at, before rank 0 requeues the job (on TERM
    # Slurm may kill a rank before its Python handler runs, so no line of job 1 is certain to come from rank 1)
    assert any(line.startswith("[rank 1]") and "after SIGUSR2" in line for line in preempted_log), preempted_log


def test_two_node_job_requeued_ends_equal_to_local_ddp(runs, local_ddp):
    """One rank on each of two Slurm nodes (trainer.num_nodes=2), requeued mid-run: equal to the local
    two-process run (see `runs` for the thread count)."""
    sweep, jobs = finished(runs, "two_nodes")
    (job,) = jobs.values()
    run = sweep / "0"
    assert_same_run(run, local_ddp)
    assert 0 < json.loads((run / "summary.json").read_text())["resumed_from_step"] < 18
    logs = job_logs(sweep, job)
    assert SYNC_WARNING not in logs
    assert "node=0(2), global_rank=0(2)" in logs and "node=1(2), global_rank=1(2)" in logs  # one rank per node
