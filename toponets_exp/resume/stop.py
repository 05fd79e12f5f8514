"""Stopping on a Slurm signal: inside a job, USR1/USR2/TERM only set a flag, and each long phase stops at its next
safe point: TERM exits 128+signal (Slurm already ends the job), USR1/USR2 requeue the job and exit.

The flag lives in the installed handler's owner, a StopSignals: RunState installs one for the fit (training stops
once the batch's state is saved, the unit placement before it between two swaps), the tasks one around the work
after it (the test and evaluation after training, task=eval). A phase polls with `stop_if_caught`, which finds the
owner through the handler itself (no other global state); outside a Slurm job, or outside those phases, nothing is
installed and the poll does nothing.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from toponets_exp.resume.slurm import REQUEUE_SIGNALS, STOP_SIGNALS, in_slurm_job, requeue_and_exit

log = logging.getLogger(__name__)


class StopSignals:
    """The flag handler of Slurm's stop and requeue signals, the signal it caught, and the handlers it replaced."""

    def __init__(self, outcome: str = "", caught: int | None = None) -> None:
        self.outcome = outcome              # what becomes of the run when a phase stops without naming it
        self.caught: int | None = caught    # the signal caught (a caller may hand one on from an earlier phase)
        self.previous: dict[int, Any] = {}  # the handlers ours replaced

    @property
    def installed(self) -> bool:
        """Whether the flag handles the signals now (inside a Slurm job, between `install` and `restore`)."""
        return bool(self.previous)

    def install(self) -> None:
        """Inside a Slurm job, make the stop and requeue signals set the flag instead of what they did."""
        if not in_slurm_job() or self.previous:
            return
        for sig in (*REQUEUE_SIGNALS, *STOP_SIGNALS):
            self.previous[sig] = signal.signal(sig, self._flag)

    def restore(self) -> None:
        """Give the signals back their former handlers (submitit's, Lightning's or the default)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def _flag(self, signum: int, frame: Any) -> None:
        """The handler: note the signal, for the running phase to act on at its next safe point."""
        log.warning("Caught %s: stopping at the next safe point", signal.Signals(signum).name)
        self.caught = signum

    def exit(self, signum: int) -> NoReturn:
        """TERM: exit with 128+signal; USR1/USR2: requeue the job (submitit's handler, else scontrol), then exit."""
        if signum in STOP_SIGNALS:
            sys.exit(128 + signum)
        requeue_and_exit(signum, self.previous.get(signal.SIGUSR2))

    def stop_if_caught(self, during: str, outcome: str | None = None) -> None:
        """After a caught signal: log what stops and what becomes of the run, then exit or requeue."""
        if self.caught is None:
            return
        log.warning("Caught %s during %s: stopping; %s", signal.Signals(self.caught).name, during,
                    outcome or self.outcome)
        self.exit(self.caught)


def current() -> StopSignals | None:
    """The StopSignals whose flag handles SIGTERM now (Lightning's handler, during a fit or test, calls it too)."""
    handler = signal.getsignal(signal.SIGTERM)
    for candidate in getattr(handler, "signal_handlers", [handler]):  # Lightning's _HandlersCompose
        owner = getattr(candidate, "__self__", None)
        if isinstance(owner, StopSignals):
            return owner
    return None


def reclaim_term() -> None:
    """Make the current flag TERM's only handler again. Lightning composes its own with it when a fit or test starts,
    and its own ends that fit or test at the next batch with exit status 0, before the run state is written."""
    owner = current()
    if owner is not None:
        signal.signal(signal.SIGTERM, owner._flag)


def stop_if_caught(during: str, outcome: str | None = None) -> None:
    """A safe point of a long phase: exit or requeue now if a Slurm signal was caught (no-op outside a job)."""
    owner = current()
    if owner is not None:
        owner.stop_if_caught(during, outcome)


@contextmanager
def stopping_on_signals(outcome: str, caught: int | None = None) -> Iterator[StopSignals]:
    """Inside a Slurm job, the enclosed phases stop at their safe points on a signal; `outcome`: what then becomes
    of the run; `caught`: a signal an earlier phase caught too late to act on."""
    signals = StopSignals(outcome, caught)
    signals.install()
    try:
        yield signals
    finally:
        signals.restore()
