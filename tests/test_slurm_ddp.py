"""Real Slurm, several ranks: two-rank DDP jobs requeued or preempted mid-run, and a two-node job, each ending equal
to the local two-process run on the same global batch."""

import json
from pathlib import Path

import pytest
import torch

import slurm
from cli import RESUMABLE, checkpoint_step, cli_env, net_params, read_csv, run_cli, start_cli, wait_for_writes

pytestmark = pytest.mark.slow
TWO_RANKS = ["hardware=slurm_cpu", "trainer.devices=2", "trainer.strategy=ddp"]
TWO_NODES = ["hardware=slurm_cpu", "trainer.num_nodes=2", "trainer.devices=1", "trainer.strategy=ddp",
             "hydra.launcher.partition=twonode"]
SYNC_WARNING = "It is recommended to use `self.log("


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    yield from slurm.cluster(tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def local_ddp(tmp_path_factory) -> Path:
    """The same training as two local processes (hardware=ddp_cpu, gloo): the reference of every Slurm job."""
    out = tmp_path_factory.mktemp("local_ddp")
    proc = run_cli("hardware=ddp_cpu", *RESUMABLE, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert SYNC_WARNING not in proc.stdout
    assert proc.stdout.count("TopoLoss on 16 layers") == 1  # rank 1's info lines stay out of the log
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


def checkpointed_job(conf: str, run: Path, suffix: str = "", partition: str = "debug") -> str:
    """The job of `partition` whose id ends with `suffix` (`_<num>` in a job array), once its run directory `run`
    holds a last.ckpt."""
    wait_for_writes(run / "checkpoints" / "last.ckpt", 1)
    (job,) = [j for j in slurm.squeue(conf, "-p", partition, "-o", "%i").split() if j.endswith(suffix)]
    return job


def test_two_rank_jobs_requeued_or_preempted_end_equal_to_local_ddp(slurm_conf, local_ddp, tmp_path):
    """Three two-rank jobs of one sweep: job 0 runs through; job 1 is requeued from outside (`scontrol requeue`,
    TERM to both ranks); job 2 gets submitit's preemption signal (USR2). All three end equal to the local two-process
    run; rank 0 alone truncates metrics.csv on resume; rank 1's warnings reach run.log marked; no validation logs a
    sync warning."""
    sweep = start_cli("-m", *TWO_RANKS, "checkpoint.every_n_train_steps=4,2,3", *RESUMABLE,
                      f"hydra.sweep.dir={tmp_path}", env=cli_env(SLURM_CONF=slurm_conf), log=tmp_path / "sweep.log")
    requeued = checkpointed_job(slurm_conf, tmp_path / "1", "_1")
    assert slurm.slurm(slurm_conf, "scontrol", "requeue", requeued).returncode == 0
    slurm.start_when_requeued(slurm_conf, requeued)
    preempted = checkpointed_job(slurm_conf, tmp_path / "2", "_2")
    assert slurm.slurm(slurm_conf, "scancel", "--signal=USR2", preempted).returncode == 0
    slurm.start_when_requeued(slurm_conf, preempted)
    assert sweep.wait(timeout=600) == 0, (tmp_path / "sweep.log").read_text()[-3000:]

    for num in (0, 1, 2):
        assert_same_run(tmp_path / str(num), local_ddp)
    for num, job in ((1, requeued), (2, preempted)):
        run = tmp_path / str(num)
        resumed = json.loads((run / "summary.json").read_text())
        assert 0 < resumed["resumed_from_step"] < 18 and checkpoint_step(run / "checkpoints/last.ckpt") == 18
        log = (run / "run.log").read_text()
        assert log.count("metric rows after it dropped") == 1, log  # rank 0's, once
        logs = job_logs(tmp_path, job)
        assert "global_rank=1(2)" in logs and SYNC_WARNING not in logs
    preempted_log = (tmp_path / "2" / "run.log").read_text().splitlines()
    assert any("Caught SIGUSR2" in line for line in preempted_log)
    # rank 1's own warning, marked: it saves at the step both ranks stop at, before rank 0 requeues the job (on TERM
    # Slurm may kill a rank before its Python handler runs, so no line of job 1 is certain to come from rank 1)
    assert any(line.startswith("[rank 1]") and "after SIGUSR2" in line for line in preempted_log), preempted_log


def test_two_node_job_requeued_ends_equal_to_local_ddp(slurm_conf, local_ddp, tmp_path):
    """One rank on each of two Slurm nodes (trainer.num_nodes=2), requeued mid-run: equal to the local
    two-process run. Lightning gives each process the machine's cores over its node's processes (here 2, there 1),
    and CPU kernels round by thread count: the job is given the local run's one thread per process (Slurm passes
    the submitting environment on)."""
    sweep = start_cli("-m", *TWO_NODES, "checkpoint.every_n_train_steps=2", *RESUMABLE,
                      f"hydra.sweep.dir={tmp_path}", env=cli_env(SLURM_CONF=slurm_conf, OMP_NUM_THREADS="1"),
                      log=tmp_path / "sweep.log")
    job = checkpointed_job(slurm_conf, tmp_path / "0", partition="twonode")  # the sweep's only job: no array
    assert slurm.slurm(slurm_conf, "scontrol", "requeue", job).returncode == 0
    slurm.start_when_requeued(slurm_conf, job)
    assert sweep.wait(timeout=600) == 0, (tmp_path / "sweep.log").read_text()[-3000:]

    run = tmp_path / "0"
    assert_same_run(run, local_ddp)
    assert 0 < json.loads((run / "summary.json").read_text())["resumed_from_step"] < 18
    logs = job_logs(tmp_path, job)
    assert SYNC_WARNING not in logs
    assert "node=0(2), global_rank=0(2)" in logs and "node=1(2), global_rank=1(2)" in logs  # one rank per node
