"""A real one-node Slurm cluster for the tests: the one .ci/run started (SLURM_CONF), or one started here."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import ROOT, wait_for_writes

SCRIPT = ROOT / "tools" / "slurm_cluster.sh"


def _answers(conf: str) -> bool:
    """Whether `sinfo` reaches a controller with this slurm.conf."""
    env = {**os.environ, "SLURM_CONF": conf}
    return subprocess.run(["sinfo", "-h"], env=env, capture_output=True, timeout=30).returncode == 0


def cluster(tmp_root: Path) -> Iterator[str]:
    """SLURM_CONF of a running cluster; skips only where Slurm is not installed and CI is unset."""
    conf = os.environ.get("SLURM_CONF")
    if conf and shutil.which("sinfo") and _answers(conf):
        yield conf
        return
    if shutil.which("slurmctld") is None:
        if os.environ.get("CI"):
            pytest.fail("Slurm is not installed; .ci/run installs it with tools/slurm_cluster.sh install")
        pytest.skip("Slurm is not installed (tools/slurm_cluster.sh install)")
    state = tmp_root / "slurm"
    subprocess.run(["bash", str(SCRIPT), "start", str(state)], check=True, timeout=120)
    try:
        yield str(state / "slurm.conf")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], timeout=60)


def squeue(conf: str, *args: str) -> str:
    """`squeue -h ARGS` output."""
    env = {**os.environ, "SLURM_CONF": conf}
    return subprocess.run(["squeue", "-h", *args], env=env, capture_output=True, text=True, timeout=30).stdout


def slurm(conf: str, *cmd: str) -> subprocess.CompletedProcess:
    """Run a Slurm client command (scancel, scontrol, ...) against the cluster."""
    env = {**os.environ, "SLURM_CONF": conf}
    return subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=60)


def start_when_requeued(conf: str, job: str, timeout: float = 120.0) -> None:
    """Wait until `job` is pending again after a requeue, then let it start now (skips Slurm's 2-minute delay).

    slurmd refuses a credential issued in the same second as the requeue revoked the old one ("Job credential
    revoked"), so the start waits 2 s past the requeue.
    """
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = squeue(conf, "-j", job, "-o", "%T").strip()
        if state == "PENDING":
            time.sleep(2.0)
            done = slurm(conf, "scontrol", "update", f"JobId={job}", "StartTime=now")
            assert done.returncode == 0, f"scontrol update JobId={job} StartTime=now: {done.stderr}"
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job} was not requeued within {timeout:.0f} s (state {state!r})")


def sweep_job(sweep: Path, num: int | None = None) -> str:
    """The Slurm id of job `num` of the sweep in `sweep`, read from submitit's folder of the job (.submitit/%j):
    `<array id>_<num>` in a job array, or with `num=None` the id of a sweep's only job. The sweep's own folders
    name it, whatever else runs on the cluster."""
    folders = [p.name for p in (sweep / ".submitit").iterdir() if p.is_dir()]
    if num is None:
        (job,) = folders
    else:
        (job,) = [f for f in folders if f.endswith(f"_{num}")]
    return job


def interrupt_after_checkpoint(conf: str, sweep: Path, num: int | None, *command: str,
                               driver: subprocess.Popen | None = None) -> str:
    """Once job `num` of the sweep (see sweep_job) has written its run directory's last.ckpt: send it `command`
    (`scontrol requeue`, `scancel --signal=USR2`), and start it as soon as it is pending again. Returns its id."""
    run = sweep / ("0" if num is None else str(num))
    wait_for_writes(run / "checkpoints" / "last.ckpt", 1, driver)
    job = sweep_job(sweep, num)
    done = slurm(conf, *command, job)
    assert done.returncode == 0, done.stderr
    start_when_requeued(conf, job)
    return job


class Background:
    """`fn(*args)` in a thread from now on; `result()` waits for it and returns its value or raises its error."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            self._value = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed to the test by result()
            self._error = err

    def result(self, timeout: float = 900.0) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"still running after {timeout:.0f} s")
        if self._error is not None:
            raise self._error
        return self._value


def stop_sweep(conf: str, sweep: Path, driver: subprocess.Popen) -> None:
    """After the tests: end a sweep that is still running (a test failed or was deselected) and cancel its jobs."""
    if driver.poll() is not None:
        return
    driver.kill()
    driver.wait()
    folders = sweep / ".submitit"
    if folders.is_dir():
        jobs = sorted({p.name.split("_")[0] for p in folders.iterdir() if p.is_dir()})
        if jobs:
            slurm(conf, "scancel", *jobs)
