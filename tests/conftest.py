"""Shared test set-up: the repo root and tests/ on sys.path, quiet and deterministic torch, and the finished runs that
several test modules read (each trained once per session through run.py; what a test adds to one, such as a line of
its run.log, no other test reads)."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import toponets_exp  # noqa: F401  registers trainer=lightning, which a test that composes the config needs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(min(torch.get_num_threads(), 2))
SHARED_CLUSTER = {"test_slurm", "test_slurm_ddp"}  # the modules that submit to the one Slurm cluster
FIRST = ("test_slurm_ddp", "test_slurm", "test_fuzz", "test_eval", "test_benchmarks", "test_resume")  # the longest


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist, whole modules go to a worker (a module's fixtures are built once), both Slurm modules to
    the same one (one cluster, one job queue at a time), in collection order (the longest first)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "slurm" if Path(module).stem in SHARED_CLUSTER else module

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first (FIRST), each module's tests in their own order: a worker that takes one early
    leaves the short ones to fill the end."""
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.path)).stem, len(FIRST)))


@pytest.fixture(autouse=True)
def _environment_kept() -> Iterator[None]:
    """What a test adds to os.environ ends with it (Lightning's PL_GLOBAL_SEED from an in-process run, say): later
    runs of run.py get the environment the session started with, and the warm interpreter serves them."""
    saved = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    yield
    for key in set(os.environ) - set(saved) - {"PYTEST_CURRENT_TEST"}:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _hydra_runtime_kept() -> Iterator[None]:
    """A Hydra runtime a test sets (HydraConfig, as a composed run's) ends with it: later tests in the same worker see
    none, as a library call outside a run does, and their messages do not name another test's config groups."""
    from hydra.core.hydra_config import HydraConfig

    before = HydraConfig.instance().cfg
    yield
    HydraConfig.instance().cfg = before


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
