"""Logging in multi-process runs: global rank 0 speaks; the other ranks only warn, with their rank named."""

from __future__ import annotations

import logging

from lightning.fabric.utilities.rank_zero import rank_zero_only


def global_rank() -> int:
    """This process's global rank: Lightning's, from the environment (RANK, LOCAL_RANK, SLURM_PROCID) until the
    Trainer's strategy sets it."""
    return int(getattr(rank_zero_only, "rank", 0) or 0)


class OtherRanksWarnOnly(logging.Filter):
    """Lets every record of rank 0 through, and only warnings and errors of the other ranks (whose info lines
    would repeat rank 0's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return global_rank() == 0 or record.levelno >= logging.WARNING


class RankFormatter(logging.Formatter):
    """The usual format, with `[rank N]` in front of the lines of a process other than rank 0."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rank = global_rank()
        return text if rank == 0 else f"[rank {rank}]{text}"
