"""Validation and test under DDP: every sample once (no padding repeats), metrics equal to one process's."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from test_callback import OPTIM
from toponets_exp.data.resumable import ShardSampler, eval_loader, whole_split
from toponets_exp.lit import ImageClassifier, ReleaseProcessGroup

N = 37  # shares of 19 and 18 samples over 2 ranks, in batches of 8: 3 batches on each, the last ones uneven


class Split(L.LightningDataModule):
    """One evaluation split of N random images, served by the project's evaluation loader."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.data = TensorDataset(torch.randn(N, 3, 8, 8, generator=g), torch.randint(0, 10, (N,), generator=g))

    def test_dataloader(self):
        return eval_loader(self, self.data, batch_size=8, num_workers=0, pin_memory=False)


def net() -> nn.Module:
    """A conv net with BatchNorm buffers (DDP broadcasts them on the first forward)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))


def metrics_on(devices: int, strategy: str = "auto") -> dict[str, float]:
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy=strategy, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[ReleaseProcessGroup()])
    module = ImageClassifier(net(), 10, **OPTIM)
    (metrics,) = trainer.test(module, datamodule=Split(), verbose=False)
    return metrics


def test_shard_sampler_gives_every_sample_once() -> None:
    data = list(range(N))
    shares = [list(ShardSampler(data, 3, r)) for r in range(3)]
    assert [len(s) for s in shares] == [13, 12, 12] == [len(ShardSampler(data, 3, r)) for r in range(3)]
    assert sorted(sum(shares, [])) == data


def test_whole_split_reads_every_sample_of_a_rank_share() -> None:
    split = Split()
    split.trainer = type("Trainer", (), {"world_size": 2, "global_rank": 1})()
    share = split.test_dataloader()
    assert len(share.sampler) == 18
    whole = whole_split(share)
    assert sum(len(y) for _, y in whole) == N and whole.batch_size == 8


@pytest.mark.slow
def test_two_rank_test_metrics_equal_one_process() -> None:
    """Loss and accuracy over the split's 37 samples, two ranks of 19 and 18 (no sample repeated), equal one
    process's."""
    one = metrics_on(1)
    two = metrics_on(2, "ddp_spawn")
    assert one.keys() == two.keys() == {"test/loss", "test/acc"}
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-7), key
