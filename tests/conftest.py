"""Shared test set-up: the repo root and tests/ on sys.path, quiet and deterministic torch."""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(min(torch.get_num_threads(), 2))
