"""Interrupted runs resume exactly: the loader position, RNG state and metrics.csv continue where they stopped."""

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import Dataset, TensorDataset

from cli import RESUMABLE, checkpoint_step, net_params, read_csv, run_cli, start_cli, wait_for_writes
from toponets_exp.data.resumable import ResumableLoader, item_seed
from toponets_exp.errors import ConfigError
from toponets_exp.resume import RunState, resume_point


class NoisyItems(Dataset):
    """Item i: (i, a random draw from torch's RNG), an augmentation stand-in."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, i: int) -> tuple[int, float]:
        return i, float(torch.rand(()))


def epoch_batches(loader: ResumableLoader, epoch: int) -> list[tuple[list[int], list[float]]]:
    loader.sampler.set_epoch(epoch)
    return [(ids.tolist(), noise.tolist()) for ids, noise in loader]


def test_order_and_augmentation_depend_on_seed_epoch_index_only() -> None:
    single = ResumableLoader(NoisyItems(), batch_size=4, seed=3)
    workers = ResumableLoader(NoisyItems(), batch_size=4, seed=3, num_workers=2)
    torch.manual_seed(0)
    first = epoch_batches(single, 0)
    torch.manual_seed(123)  # the global RNG plays no part
    assert epoch_batches(single, 0) == first
    assert epoch_batches(workers, 0) == first
    assert epoch_batches(single, 1) != first
    assert sorted(i for ids, _ in first for i in ids) == list(range(20))
    assert epoch_batches(ResumableLoader(NoisyItems(), batch_size=4, seed=4), 0) != first
    assert len({item_seed(3, e, i) for e in range(3) for i in range(20)}) == 60


def test_loader_state_resumes_inside_the_saved_epoch_only() -> None:
    loader = ResumableLoader(NoisyItems(), batch_size=4, seed=0)
    full = epoch_batches(loader, 2)
    loader.sampler.set_epoch(2)
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    assert state == {"epoch": 2, "batches": 2}

    resumed = ResumableLoader(NoisyItems(), batch_size=4, seed=0)
    resumed.load_state_dict(state)
    assert epoch_batches(resumed, 2) == full[2:]
    assert resumed.state_dict() == {"epoch": 2, "batches": 5}
    resumed.load_state_dict({"epoch": 1, "batches": 3})  # a later epoch starts from its beginning
    assert epoch_batches(resumed, 2) == full


def test_ranks_share_an_epoch_without_overlap() -> None:
    data = TensorDataset(torch.arange(12))
    shards = [ResumableLoader(data, batch_size=3, seed=0, num_replicas=2, rank=r) for r in (0, 1)]
    seen = [[int(x) for (batch,) in shard for x in batch] for shard in shards]
    assert len(seen[0]) == len(seen[1]) == 6 and sorted(seen[0] + seen[1]) == list(range(12))


def test_rng_state_round_trip() -> None:
    import random

    callback = RunState("unused", 0, "unused.csv")
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    state = callback.state_dict()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    callback.load_state_dict(state)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


@pytest.mark.slow
@pytest.mark.parametrize("writes,where", [(1, "inside an epoch"), (2, "at an epoch's end")])
def test_kill_9_then_resume_ends_identical(uninterrupted, tmp_path, writes, where) -> None:
    """last.ckpt is written at step 4 (inside epoch 0), after epoch 0 (step 6), at step 8, ... ; kill -9 after
    `writes` of them, run the same command with resume=, and compare everything with the uninterrupted run."""
    out = tmp_path / "run"
    args = [*RESUMABLE, "checkpoint.every_n_train_steps=4", f"hydra.run.dir={out}"]
    proc = start_cli(*args)
    wait_for_writes(out / "checkpoints" / "last.ckpt", writes, proc)
    proc.kill()
    proc.wait()
    step = checkpoint_step(out / "checkpoints" / "last.ckpt")
    assert 0 < step < 18 and not (out / "summary.json").exists()

    resumed = run_cli(*args, f"resume={out}")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"Resuming {out}" in resumed.stdout
    whole = json.loads((uninterrupted / "summary.json").read_text())
    again = json.loads((out / "summary.json").read_text())
    assert again["resumed_from_step"] == step
    assert again["test"] == whole["test"] and again["topo"] == whole["topo"]
    assert again["optimizer_steps"] == whole["optimizer_steps"] == 18
    first, second = net_params(uninterrupted / "checkpoints/last.ckpt"), net_params(out / "checkpoints/last.ckpt")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert read_csv(out / "metrics.csv") == read_csv(uninterrupted / "metrics.csv")  # no step lost or repeated


def test_resume_needs_a_checkpoint(tmp_path) -> None:
    proc = run_cli(*RESUMABLE, f"resume={tmp_path}")
    assert proc.returncode == 2
    assert f"resume={tmp_path}: the run stopped before its first checkpoint ({tmp_path}/checkpoints/last.ckpt does " \
           "not exist), so there is nothing to continue; start it again in a new directory: python run.py" \
        in proc.stdout


def test_a_run_stopped_before_its_first_checkpoint_is_not_mixed_with_another(tmp_path) -> None:
    """Its directory refuses a new run (which would add rows to its metrics.csv and keep its .hydra/), and resume=
    says how to start it again: the command of its first start."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- topo.weight=1\n- hydra.run.dir=x\n")
    (tmp_path / "config_resolved.yaml").write_text("seed: 0\n")
    (tmp_path / "metrics.csv").write_text("epoch,step\n0,0\n")
    with pytest.raises(ConfigError, match="holds a run that stopped before its first checkpoint "
                                          r"\(config_resolved.yaml, metrics.csv\); a new run does not mix with it"):
        resume_point(OmegaConf.create({"resume": None}), tmp_path)
    with pytest.raises(ConfigError, match="start it again in a new directory: python run.py topo.weight=1$"):
        resume_point(OmegaConf.create({"resume": str(tmp_path)}), tmp_path)


def test_a_finished_run_is_not_overwritten_and_resume_refuses_another_config(uninterrupted) -> None:
    """A fresh run into the finished run's directory and a resume with another config are refused; resuming it as
    it was says it has finished. None of them changes a file of the run, its log or its .hydra/ included."""
    def files() -> dict:
        return {p: p.read_bytes() for p in uninterrupted.rglob("*") if p.is_file()}

    before = files()
    again = run_cli(*RESUMABLE, "checkpoint.every_n_train_steps=4", f"hydra.run.dir={uninterrupted}")
    assert again.returncode == 2
    assert f"the run directory {uninterrupted} already holds a run" in again.stdout
    other = run_cli(*RESUMABLE, "checkpoint.every_n_train_steps=4", "topo.weight=1", f"resume={uninterrupted}")
    assert other.returncode == 2 and "topo.weight: 5.0 -> 1" in other.stdout, other.stdout[-2000:]
    assert files() == before
    same = run_cli(*RESUMABLE, "checkpoint.every_n_train_steps=4", f"resume={uninterrupted}")
    assert same.returncode == 0 and f"The run in {uninterrupted} has finished (18 optimizer steps" in same.stdout
    assert "evaluate again with: python run.py task=eval ckpt_path=" in same.stdout
    changed = {p for p, content in files().items() if before.get(p) != content}
    assert changed == {uninterrupted / "run.log"}  # only that line, in the run's own log


def test_a_checkpoint_of_the_former_layout_restores_its_rngs() -> None:
    """Checkpoints written before RunState kept the RNGs under callbacks['RNGState']: resuming one restores them."""
    from toponets_exp.resume.rng import rng_state

    torch.manual_seed(5)
    state = rng_state()
    expected = torch.rand(3)
    torch.manual_seed(9)
    RunState("unused", 0, "unused.csv").on_load_checkpoint(None, None, {"callbacks": {"RNGState": state}})
    assert torch.equal(torch.rand(3), expected)
