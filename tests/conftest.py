"""Shared test set-up: the repo root and tests/ on sys.path, quiet and deterministic torch, and the finished runs that
several test modules read (each trained once per session through run.py; what a test adds to one, such as a line of
its run.log, no other test reads)."""

import sys
from pathlib import Path

import pytest
import torch

import toponets_exp  # noqa: F401  registers trainer=lightning, which a test that composes the config needs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(min(torch.get_num_threads(), 2))
SHARED_CLUSTER = {"test_slurm", "test_slurm_ddp"}  # the modules that submit to the one Slurm cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist's loadgroup, a module's tests run on one worker, one after the other (its module-scoped
    fixtures are built once), and the Slurm modules on the same one (one cluster, one job queue at a time)."""
    for item in items:
        module = item.module.__name__ if item.module is not None else item.nodeid
        item.add_marker(pytest.mark.xdist_group("slurm" if module in SHARED_CLUSTER else module))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, str]:
    """A tiny run (TINY, seed 3, τ 5) trained through run.py: its directory and its output."""
    from cli import TINY, run_cli

    out = tmp_path_factory.mktemp("trained")
    proc = run_cli(*TINY, "seed=3", "topo.weight=5", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return out, proc.stdout


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """last.ckpt of the tiny run, for the tests that need a real checkpoint."""
    return tiny_run[0] / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory) -> Path:
    """The directory of a RESUMABLE run (last.ckpt every 4 steps) that ran through: the reference of the interrupted
    and resumed runs, local (test_resume) and under Slurm (test_slurm)."""
    from cli import RESUMABLE, run_cli

    out = tmp_path_factory.mktemp("whole")
    proc = run_cli(*RESUMABLE, "checkpoint.every_n_train_steps=4", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return out
