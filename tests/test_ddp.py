"""Under multi-process DDP (2 CPU processes, gloo), training with the callback equals 1-process training."""

import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import test_callback
from test_callback import LAYERS, OPTIM, TopoInLoss, assert_same, fit, nets
from topo_callbacks import topo_callback
from toponets_exp.lit import ImageClassifier

N, PER_RANK, RANKS = 64, 4, 2


def dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(N, 3, 8, 8, generator=g), torch.randint(0, 10, (N,), generator=g))


def global_batches() -> list[list[int]]:
    """The samples that both ranks see together at each step: Lightning gives each rank a DistributedSampler
    (shuffle=True for training, seed 0), so rank r takes perm[r::2] and batches of PER_RANK of it."""
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(0)).tolist()
    shards = [perm[r::RANKS] for r in range(RANKS)]
    return [sum((s[i:i + PER_RANK] for s in shards), []) for i in range(0, N // RANKS, PER_RANK)]


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_on_the_global_batch(monkeypatch):
    """The all-reduced task gradient equals the 1-process gradient on the union of the ranks' batches; TopoLoss is
    then added once per rank after the all-reduce, identically on both ranks, so the parameters must match the
    1-process reference with TopoLoss in the loss."""
    net_a, net_b = nets()
    monkeypatch.setattr(test_callback, "loader", lambda: DataLoader(dataset(), batch_size=PER_RANK))
    ours = fit(ImageClassifier(net_a, 10, **OPTIM), [topo_callback(net_a, LAYERS, weight=5.0, factor=2.0)],
               strategy="ddp_spawn", devices=RANKS)
    monkeypatch.setattr(test_callback, "loader", lambda: DataLoader(dataset(), batch_sampler=global_batches()))
    ref = fit(TopoInLoss(net_b, 5.0))
    assert_same(ours, ref, atol=1e-6)


RELEASE_SCRIPT = """
import atexit, os, tempfile, torch
from toponets_exp.lit import ReleaseProcessGroup
atexit.register(lambda: print("initialized at exit:", torch.distributed.is_initialized()))  # runs last
store = torch.distributed.FileStore(os.path.join(tempfile.mkdtemp(), "store"), 1)
torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
callback = ReleaseProcessGroup()
callback.setup(None, None, "fit")
callback.setup(None, None, "test")  # registered once: a second destroy would raise
print("initialized before exit:", torch.distributed.is_initialized())
"""


def test_process_group_is_destroyed_at_exit_before_the_interpreter_shuts_down() -> None:
    """A gloo group that outlives the trainer is destroyed by the callback's exit handler, once, before the other exit
    handlers registered earlier run (a group left to the interpreter's shutdown can abort a finished rank)."""
    done = subprocess.run([sys.executable, "-c", RELEASE_SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["initialized before exit: True", "initialized at exit: False"]
