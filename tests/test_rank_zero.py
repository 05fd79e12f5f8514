"""Multi-process runs: only global rank 0 changes the run directory, and the other ranks' logs stay quiet."""

import logging
from types import SimpleNamespace

import pytest
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import OmegaConf

from cli import read_csv
from toponets_exp.io import write_csv
from toponets_exp.lit import ImageClassifier
from toponets_exp.lit.epoch_metrics import PER_RANK
from toponets_exp.rank_logging import OtherRanksWarnOnly, RankFormatter
from toponets_exp.resume.run_dir import RESOLVED, prepare_run_dir


@pytest.fixture
def interrupted_run(tmp_path):
    """A run directory interrupted at optimizer step 4, with 2 metric rows before that step and 3 after it."""
    cfg = OmegaConf.create({"resume": str(tmp_path), "seed": 0, "topo": {"weight": 5.0}})
    (tmp_path / RESOLVED).write_text(OmegaConf.to_yaml(cfg))
    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 4, "metrics_rows": 2}, tmp_path / "checkpoints" / "last.ckpt")
    write_csv(tmp_path / "metrics.csv", ["step", "loss"], [{"step": s, "loss": 1.0 / (s + 1)} for s in range(5)])
    return cfg, tmp_path


def test_only_the_writer_truncates_metrics_on_resume(interrupted_run) -> None:
    cfg, out = interrupted_run
    before = (out / "metrics.csv").read_bytes()
    other = prepare_run_dir(cfg, out, writer=False)
    assert (out / "metrics.csv").read_bytes() == before
    zero = prepare_run_dir(cfg, out, writer=True)
    assert other == zero and zero.step == 4
    assert [row["step"] for row in read_csv(out / "metrics.csv")] == ["0", "1"]


def test_requeued_without_checkpoint_only_the_writer_empties_metrics(interrupted_run, monkeypatch) -> None:
    cfg, out = interrupted_run
    cfg.resume = None
    (out / "checkpoints" / "last.ckpt").unlink()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert prepare_run_dir(cfg, out, writer=False) is None and len(read_csv(out / "metrics.csv")) == 5
    assert prepare_run_dir(cfg, out, writer=True) is None and read_csv(out / "metrics.csv") == []


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_other_ranks_log_warnings_only_and_say_which_rank(rank, monkeypatch) -> None:
    monkeypatch.setattr(rank_zero_only, "rank", rank)
    keep, fmt = OtherRanksWarnOnly(), RankFormatter("%(levelname)s %(message)s")
    info = logging.LogRecord("x", logging.INFO, __file__, 1, "Resuming", None, None)
    warning = logging.LogRecord("x", logging.WARNING, __file__, 1, "Caught %s", ("SIGTERM",), None)
    assert keep.filter(info) is (rank == 0) and keep.filter(warning)
    assert fmt.format(warning) == ("WARNING Caught SIGTERM" if rank == 0 else f"[rank {rank}]WARNING Caught SIGTERM")


def classifier_with_epoch_sums(loss: float, labels: list[int]) -> ImageClassifier:
    """A classifier whose training-epoch aggregates have seen one batch: mean loss `loss`, predictions 0, 1, ..."""
    module = ImageClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10)), 10, {})
    if labels:
        module.train_loss.update(torch.tensor(loss), len(labels))
        module.accuracy["train_"].update(torch.eye(10)[:len(labels)], torch.tensor(labels))
    return module


@pytest.mark.parametrize("ranks", [2, 3])
def test_each_rank_resumes_its_own_epoch_aggregates(ranks) -> None:
    """A two-rank checkpoint holds both ranks' training-epoch states: each rank of two takes its own back; three
    ranks (another rank count) get the sums on rank 0 and zeros elsewhere."""
    shares = [classifier_with_epoch_sums(2.0, [0, 1, 5]), classifier_with_epoch_sums(1.0, [0, 7])]
    keys = ["train_loss.mean_value", "train_loss.weight", "accuracy.train_.tp", "accuracy.train_.fn"]
    checkpoint = {"state_dict": shares[0].state_dict(),
                  PER_RANK: {k: torch.stack([m.state_dict()[k] for m in shares]) for k in keys}}
    for rank in range(ranks):
        module = classifier_with_epoch_sums(0.0, [])  # a fresh process
        module._trainer = SimpleNamespace(global_rank=rank, world_size=ranks)
        state = {**checkpoint, "state_dict": dict(checkpoint["state_dict"])}
        module.on_load_checkpoint(state)
        for key in keys:
            if ranks == 2:
                expected = shares[rank].state_dict()[key]
            else:
                expected = checkpoint[PER_RANK][key].sum(0) if rank == 0 else torch.zeros_like(
                    checkpoint[PER_RANK][key][0])
            assert torch.equal(state["state_dict"][key], expected), (rank, key)
        assert torch.equal(state["state_dict"]["net.1.weight"], checkpoint["state_dict"]["net.1.weight"])
    assert checkpoint[PER_RANK]["train_loss.mean_value"].tolist() == [6.0, 2.0]
    assert checkpoint[PER_RANK]["accuracy.train_.tp"].sum(-1).tolist() == [2, 1]
