"""Inside a Slurm job a stop or requeue signal ends the long phases around training within seconds (the signal flag,
toponets_exp.resume.stop)."""

import os
import signal

import pytest

from toponets_exp.resume.stop import current, stop_if_caught, stopping_on_signals

JOB = "4242"


def test_the_flag_handles_the_signals_inside_a_job_only_and_gives_them_back(monkeypatch):
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with stopping_on_signals("never") as signals:
        assert not signals.installed and current() is None and signal.getsignal(signal.SIGTERM) is before
    monkeypatch.setenv("SLURM_JOB_ID", JOB)
    with pytest.raises(SystemExit) as stopped, stopping_on_signals("the run is resumable") as signals:
        assert current() is signals
        stop_if_caught("a phase")  # nothing caught yet: goes on
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.caught == signal.SIGTERM
        stop_if_caught("a phase")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before and current() is None
