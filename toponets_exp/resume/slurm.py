"""Everything the run knows of Slurm: whether it is a job, whether it was requeued, its signals and requeueing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from lightning.pytorch.plugins.environments import SLURMEnvironment

REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # submitit's warning signal (USR2) and Lightning's usual one
STOP_SIGNALS = (signal.SIGTERM,)                     # Slurm ending the job (scontrol requeue, scancel, preemption)


def in_slurm_job() -> bool:
    """Whether this process is a task of a Slurm job."""
    return "SLURM_JOB_ID" in os.environ


def requeued() -> bool:
    """Whether this process is a Slurm job started again after a requeue (preemption, time-out)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def submitit_job() -> str | None:
    """'<job id> (log <stderr file>)' inside a submitit job (e.g. hardware=slurm), else None."""
    if "SUBMITIT_EXECUTOR" not in os.environ:
        return None
    import submitit

    env = submitit.JobEnvironment()
    return f"{env.job_id} (log {env.paths.stderr})"


def cluster_plugins() -> list[Any] | None:
    """Lightning's Slurm environment with its own auto-requeue off (the run state and submitit requeue), in a job."""
    return [SLURMEnvironment(auto_requeue=False)] if in_slurm_job() else None


def requeue_and_exit(signum: int, submitit_handler: Callable[..., Any] | Any) -> NoReturn:
    """Requeue through submitit's handler (it resubmits the same call), else with scontrol; then exit."""
    if callable(submitit_handler) and getattr(submitit_handler, "__name__", "") == "checkpoint_and_try_requeue":
        submitit_handler(signal.SIGUSR2, None)  # rank 0 requeues and exits; other ranks return
    elif int(os.environ.get("SLURM_PROCID", "0")) == 0:
        subprocess.check_call(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], timeout=60)
    sys.exit(128 + signum)
