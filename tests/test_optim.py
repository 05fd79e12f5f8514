"""LR schedules of `lr_schedule=` against a closed-form reference at every step, and exact state_dict resume."""

from __future__ import annotations

import io
import math

import pytest
import torch

from toponets_exp.lit.optim import param_groups, warmup_constant, warmup_cosine

TOTAL = 12


def build_lr_schedule(optimizer: torch.optim.Optimizer, kind: str, total: int, warmup: int = 0,
                      floor: float = 0.0) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule of conf/lr_schedule/<kind>.yaml with these settings."""
    if kind == "constant":
        return warmup_constant(optimizer, total, warmup_steps=warmup)
    return warmup_cosine(optimizer, total, warmup_steps=warmup, min_lr_ratio=floor)


def reference_factor(step: int, kind: str, warmup: int, floor: float, total: int) -> float:
    """Linear warm-up step / warmup, then constant or a half cosine from 1 at `warmup` to `floor` at `total`."""
    if step < warmup:
        return step / warmup
    if kind == "constant":
        return 1.0
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _optimizer(lr: float = 0.5) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=lr)


def _lrs(optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler, n: int) -> list[float]:
    """The LR of each of the next `n` optimizer steps."""
    out = []
    for _ in range(n):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


@pytest.mark.parametrize("kind", ["cosine", "constant"])
@pytest.mark.parametrize("warmup", [0, 1, 3])
@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_schedule_matches_the_reference_at_every_step(kind: str, warmup: int, floor: float) -> None:
    optimizer = _optimizer()
    schedule = build_lr_schedule(optimizer, kind, TOTAL, warmup, floor)
    got = _lrs(optimizer, schedule, TOTAL + 1)  # steps 0 .. TOTAL: the last is the LR after the final step
    want = [0.5 * reference_factor(s, kind, warmup, floor, TOTAL) for s in range(TOTAL + 1)]
    assert got == pytest.approx(want, abs=1e-12)
    assert got[-1] == pytest.approx(0.5 * (floor if kind == "cosine" else 1.0), abs=1e-12)


def test_total_shorter_than_warmup_still_warms_up_linearly() -> None:
    optimizer = _optimizer(1.0)
    schedule = build_lr_schedule(optimizer, "cosine", 3, warmup=5)
    assert _lrs(optimizer, schedule, 6) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


@pytest.mark.parametrize("kind", ["cosine", "constant"])
def test_state_dict_round_trip_resumes_exactly(kind: str) -> None:
    optimizer = _optimizer()
    schedule = build_lr_schedule(optimizer, kind, TOTAL, 3, 0.1)
    _lrs(optimizer, schedule, 5)
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    expected = _lrs(optimizer, schedule, TOTAL - 5)

    resumed_optimizer = _optimizer()
    resumed = build_lr_schedule(resumed_optimizer, kind, TOTAL, 3, 0.1)
    resumed_optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["schedule"])
    assert _lrs(resumed_optimizer, resumed, TOTAL - 5) == expected


def test_no_decay_1d_puts_biases_and_norm_weights_in_a_group_without_weight_decay() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    net[1].weight.requires_grad_(False)
    (only,) = param_groups(net, no_decay_1d=False)
    assert [p.shape for p in only["params"]] == [(4, 3), (4,), (4,)] and "weight_decay" not in only
    decay, no_decay = param_groups(net, no_decay_1d=True)
    assert [p.shape for p in decay["params"]] == [(4, 3)] and "weight_decay" not in decay
    assert [p.shape for p in no_decay["params"]] == [(4,), (4,)] and no_decay["weight_decay"] == 0.0
    optimizer = torch.optim.AdamW([decay, no_decay], lr=1e-3, weight_decay=0.3)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.3, 0.0]
