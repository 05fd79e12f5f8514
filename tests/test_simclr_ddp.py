"""SimCLR under DDP (2 CPU processes, gloo): each rank's negatives are the whole global batch's, with gradients, so
that the loss and every gradient DDP averages equal those of one process on the global batch; a checkpoint keeps
every rank's views generator, and each rank resumes its own."""

import os
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.fabric.utilities.distributed import _all_gather_ddp_if_available
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from toponets_exp.lit import SimCLR
from toponets_exp.lit.simclr import VIEWS_RNG

RANKS, N = 2, 8  # a global batch of 8 images, 4 per rank


def simclr() -> SimCLR:
    """The same SimCLR at every call, over a trunk without BatchNorm (its statistics would be per rank: TDANN's
    SyncBatchNorm runs on GPUs only)."""
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(24, 10))
    return SimCLR(trunk, optimizer=None, feature_dim=10, hidden_dim=12, projection_dim=5)


def global_views() -> torch.Tensor:
    """Both views of the global batch, (2, N, 3, 6, 6)."""
    return torch.randn(2, N, 3, 6, 6, generator=torch.Generator().manual_seed(1))


class ViewsLoss(nn.Module):
    """The module's training loss of two views as a forward, for DDP to wrap."""

    def __init__(self, module: SimCLR) -> None:
        super().__init__()
        self.module = module

    def forward(self, view0: torch.Tensor, view1: torch.Tensor) -> torch.Tensor:
        return self.module.views_loss(view0, view1)


def loss_and_gradients(views: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """This process's loss of `views` and the parameters' gradients (DDP's average over ranks when it runs)."""
    module = simclr()
    wrapped = DistributedDataParallel(ViewsLoss(module)) if dist.is_initialized() else ViewsLoss(module)
    loss = wrapped(*views)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in module.named_parameters()}


def on_rank(rank: int) -> SimCLR:
    """A SimCLR attached to what its checkpoint hooks read of a DDP trainer: the rank, the rank count and the
    strategy's gather (Lightning's)."""
    module = simclr()
    module._trainer = SimpleNamespace(global_rank=rank, world_size=RANKS,
                                      strategy=SimpleNamespace(all_gather=_all_gather_ddp_if_available))
    return module


def checkpointed_views(rank: int) -> dict[str, torch.Tensor]:
    """This rank's views generator after some draws, the checkpoint's generator states (every rank writes the
    checkpoint's content, rank 0 the file) and the state a new module on this rank restores from it."""
    first = on_rank(rank)
    torch.rand(3, generator=first._training_views())
    checkpoint = {"state_dict": {}}
    first.on_save_checkpoint(checkpoint)
    second = on_rank(rank)
    second.on_load_checkpoint(checkpoint)
    return {"state": first.views_rng.get_state(), "saved": checkpoint[VIEWS_RNG],
            "restored": second.views_rng.get_state()}


def rank_worker(rank: int, store_path: str, out_dir: str) -> None:
    """One rank: its half of the global batch; the mean of the ranks' losses, its gradients and its views
    generator through a checkpoint saved."""
    store = dist.FileStore(store_path, RANKS)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=RANKS)
    try:
        share = global_views()[:, rank * N // RANKS:(rank + 1) * N // RANKS]
        loss, grads = loss_and_gradients(share)
        dist.all_reduce(loss)
        torch.save({"loss": loss / RANKS, "grads": grads, **checkpointed_views(rank)},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """What each of the 2 ranks saved."""
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(rank_worker, args=(str(out / "store"), str(out)), nprocs=RANKS, join=True)
    return [torch.load(out / f"rank{rank}.pt", weights_only=True) for rank in range(RANKS)]


def test_two_ranks_equal_one_process_on_the_global_batch(ranks) -> None:
    """The mean of the ranks' losses and every parameter's gradient on every rank equal the one-process loss and
    gradients (to 1e-6). Negatives not gathered would change the loss; gathered without their gradients (the other
    ranks' losses not reaching this rank's projections), the gradients."""
    loss, grads = loss_and_gradients(global_views())
    for got in ranks:
        torch.testing.assert_close(got["loss"], loss, atol=1e-6, rtol=0)
        assert got["grads"].keys() == grads.keys()
        for name, grad in grads.items():
            assert grad.abs().max() > 0, name
            torch.testing.assert_close(got["grads"][name], grad, atol=1e-6, rtol=0, msg=lambda m, k=name: f"{k}: {m}")


def test_a_checkpoint_keeps_every_ranks_views_generator(ranks) -> None:
    """The checkpoint holds both ranks' states (each rank's own stream), and each rank restores its own."""
    assert torch.equal(ranks[0]["saved"], ranks[1]["saved"]) and len(ranks[0]["saved"]) == RANKS
    assert not torch.equal(ranks[0]["state"], ranks[1]["state"])
    for rank, got in enumerate(ranks):
        assert torch.equal(got["saved"][rank], got["state"]) and torch.equal(got["restored"], got["state"])
