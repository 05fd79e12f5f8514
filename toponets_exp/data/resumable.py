"""The DataModules' loaders: training loaders that resume mid-epoch exactly, and in-order evaluation loaders.

The sample order of an epoch is a function of (seed, epoch) and every sample's augmentation a function of
(seed, epoch, index): neither depends on worker processes, on how many loaders came before, or on an interruption.
The loader's position (epoch, batches consumed) goes into Lightning checkpoints through the `state_dict` /
`load_state_dict` protocol, so a run restored mid-epoch continues with the very batch it would have seen next.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from toponets_exp.checks import integer


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch (index -1: the epoch's loader)."""
    return int(np.random.SeedSequence((seed, epoch, index + 1)).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


class SeededItems(Dataset):
    """base[i] for key (i, seed), with torch's CPU and Python's RNG seeded by `seed` while it is built.

    Only the CPU generator, which the transforms draw from and fork_rng restores: torch.manual_seed would also
    queue the seeding of CUDA/XPU/MTIA generators, recording a stack trace each time (0.06-0.3 ms per item).
    """

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        if not isinstance(key, tuple):
            return self.base[key]
        index, seed = key
        python_state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            random.seed(seed)
            try:
                return self.base[index]
            finally:
                random.setstate(python_state)


class EpochSampler(DistributedSampler):
    """This rank's share of a (seed, epoch)-shuffled epoch as (index, item seed) keys, from a start position.

    A DistributedSampler, so Lightning keeps it under DDP instead of injecting its own.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int,
                 drop_last: bool) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.start = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())[self.start:]
        return iter([(i, item_seed(self.seed, self.epoch, i)) for i in indices])


class ResumableLoader(DataLoader):
    """Shuffled training DataLoader whose in-epoch position is saved in and restored from checkpoints."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, num_replicas: int = 1, rank: int = 0,
                 shuffle: bool = True, drop_last: bool = False, **kwargs: Any) -> None:
        sampler = EpochSampler(dataset, num_replicas, rank, shuffle, seed, drop_last)
        super().__init__(SeededItems(dataset), batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                         generator=torch.Generator(), **kwargs)
        self.seed = seed
        self._consumed = 0
        self._pending: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[Any]:
        """Batches of the sampler's current epoch (set by Lightning before the first one is drawn)."""
        epoch = self.sampler.epoch
        skip = 0
        if self._pending is not None and self._pending[0] == epoch:
            skip = self._pending[1]
        self._pending = None
        self.sampler.start = skip * self.batch_size
        self.generator.manual_seed(item_seed(self.seed, epoch, -1))  # worker seeds: a function of the epoch
        self._consumed = skip
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Epoch and batches consumed in it."""
        return {"epoch": int(self.sampler.epoch), "batches": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the saved epoch after its consumed batches (a later epoch starts from its beginning)."""
        self._pending = (int(state["epoch"]), int(state["batches"]))


def check_loader_args(batch_size: Any, num_workers: Any) -> None:
    """data.batch_size must be a positive integer and data.num_workers a non-negative one."""
    integer("data.batch_size", batch_size, 1)
    integer("data.num_workers", num_workers, 0)


def rank_share(datamodule: L.LightningDataModule) -> tuple[int, int]:
    """(ranks, this rank) of the Trainer the DataModule is attached to; (1, 0) outside one."""
    trainer = datamodule.trainer
    return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)


def train_loader(datamodule: L.LightningDataModule, dataset: Dataset, batch_size: int, num_workers: int,
                 pin_memory: bool, drop_last: bool = False) -> ResumableLoader:
    """The resumable training loader of a DataModule: this rank's shard, seeded by the run's seed.

    The seed is the one `seed_everything` recorded (PL_GLOBAL_SEED), as Lightning's own DistributedSampler uses.
    """
    replicas, rank = rank_share(datamodule)
    return ResumableLoader(dataset, batch_size, seed=int(os.environ.get("PL_GLOBAL_SEED", 0)), num_replicas=replicas,
                           rank=rank, drop_last=drop_last, num_workers=num_workers, pin_memory=pin_memory,
                           persistent_workers=num_workers > 0)


class ShardSampler(DistributedSampler):
    """This rank's share of an evaluation split, in order: samples rank, rank + N, ...; none repeated.

    Lightning's own DistributedSampler pads every rank to the same length by repeating samples, so a metric reduced
    over the ranks would count those twice; the metrics here are sum-reduced (torchmetrics), so uneven shares give
    exactly the metric of the whole split. A DistributedSampler, so Lightning keeps it under DDP.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))  # type: ignore[arg-type]


def eval_loader(datamodule: L.LightningDataModule, dataset: Dataset, batch_size: int, num_workers: int,
                pin_memory: bool) -> DataLoader:
    """An evaluation split's DataLoader: in order, this rank's share of it under DDP (no sample repeated); a stream
    (IterableDataset) shards itself."""
    replicas, rank = rank_share(datamodule)
    sampler = None if isinstance(dataset, IterableDataset) else ShardSampler(dataset, replicas, rank)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, persistent_workers=num_workers > 0)


def whole_split(loader: DataLoader) -> DataLoader:
    """An evaluation loader over every sample of its split, whatever rank's share it was built for (an analysis
    that runs on one process after DDP training)."""
    if not isinstance(loader.sampler, ShardSampler) or loader.sampler.num_replicas == 1:
        return loader
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=False, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory, persistent_workers=loader.persistent_workers)
