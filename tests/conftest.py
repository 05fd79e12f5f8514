"""Shared test set-up: the repo root and tests/ on sys.path, quiet and deterministic torch, a trained checkpoint."""

import sys
from pathlib import Path

import pytest
import torch

import toponets_exp  # noqa: F401  registers trainer=lightning, which a test that composes the config needs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(min(torch.get_num_threads(), 2))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """last.ckpt of a tiny default run, trained once through run.py for the tests that need a real checkpoint."""
    from cli import TINY, run_cli

    out = tmp_path_factory.mktemp("trained")
    proc = run_cli(*TINY, f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stdout[-2000:]
    return out / "checkpoints" / "last.ckpt"
