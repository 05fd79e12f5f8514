"""Multi-process runs: only global rank 0 changes the run directory, and the other ranks' logs stay quiet."""

import json
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
from toponets_exp.console import OtherRanksWarnOnly, RankFormatter
from toponets_exp.resume.run_dir import RESOLVED, reset_metrics, resume_point


@pytest.fixture
def interrupted_run(tmp_path):
    """A run directory interrupted at optimizer step 4, with 2 metric rows before that step and 3 after it."""
    cfg = OmegaConf.create({"resume": str(tmp_path), "seed": 0, "topo": {"weight": 5.0}})
    (tmp_path / RESOLVED).write_text(OmegaConf.to_yaml(cfg))
    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 4, "metrics_rows": 2}, tmp_path / "checkpoints" / "last.ckpt")
    write_csv(tmp_path / "metrics.csv", ["step", "loss"], [{"step": s, "loss": 1.0 / (s + 1)} for s in range(5)])
    return cfg, tmp_path


def test_the_resume_point_is_read_only_and_rank_0_truncates_metrics(interrupted_run) -> None:
    """Every rank finds the resume point without writing; rank 0 alone then keeps metrics.csv's rows before it."""
    cfg, out = interrupted_run
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    point = resume_point(cfg, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert point.step == 4 and point.metric_rows == 2 and not point.finished
    reset_metrics(out, point)
    assert [row["step"] for row in read_csv(out / "metrics.csv")] == ["0", "1"]


def test_requeued_without_checkpoint_starts_over_and_rank_0_empties_metrics(interrupted_run, monkeypatch) -> None:
    cfg, out = interrupted_run
    cfg.resume = None
    (out / "checkpoints" / "last.ckpt").unlink()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resume_point(cfg, out) is None and len(read_csv(out / "metrics.csv")) == 5
    reset_metrics(out, None)
    assert read_csv(out / "metrics.csv") == []


@pytest.mark.parametrize("stop, finished", [({}, True), ({"max_epochs": 3}, True), ({"max_epochs": 4}, False),
                                            ({"max_steps": 40}, True), ({"max_steps": 41}, False),
                                            ({"max_epochs": -1}, False), ({"max_time": "00:01:00:00"}, False)])
def test_a_finished_run_resumes_only_when_its_stop_criteria_reach_further(interrupted_run, stop, finished) -> None:
    cfg, out = interrupted_run
    (out / "summary.json").write_text(json.dumps({"epochs": 3, "optimizer_steps": 40}))
    cfg.trainer = {"max_epochs": None, "max_steps": -1, "max_time": None, **stop}
    (out / RESOLVED).write_text(OmegaConf.to_yaml(cfg))
    assert resume_point(cfg, out).finished is finished


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
    module = ImageClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10)), 10,
                             optimizer=torch.optim.SGD)
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
