"""What the console and run.log show: rank 0's lines, the other ranks' warnings with their rank named, and no
third-party advertisements or deprecation notices about code that is not ours."""

from __future__ import annotations

import logging
import warnings

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


class NoTips(logging.Filter):
    """Drops Lightning's advertisement printed by every Trainer ("💡 Tip: ... litlogger ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def quiet_third_party() -> None:
    """Hide warnings no user of this project can act on: deprecation notices libraries raise about each other's
    code (Lightning's use of torch's `LeafSpec`), Lightning's hint to launch with `srun` on a machine with Slurm
    (jobs are launched with hardware=slurm), and its notice that a resumed run's checkpoint directory is not empty
    (a fresh run is refused a directory that holds a run before Lightning starts)."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
