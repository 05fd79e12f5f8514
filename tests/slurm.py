"""A real one-node Slurm cluster for the tests: the one .ci/run started (SLURM_CONF), or one started here."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import ROOT

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
    while time.monotonic() < deadline:
        state = squeue(conf, "-j", job, "-o", "%T").strip()
        if state == "PENDING":
            time.sleep(2.0)
            slurm(conf, "scontrol", "update", f"JobId={job}", "StartTime=now")
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job} was not requeued within {timeout:.0f} s (state {state!r})")
