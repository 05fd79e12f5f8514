"""τ schedules: values along the steps and state round trips."""

import math

import pytest

from toponets_exp.topo import Chained, Constant, CosineDecay, LinearWarmup


def run(schedule, steps):
    values = []
    for _ in range(steps):
        values.append(schedule.value)
        schedule.step()
    return values


def test_constant():
    assert run(Constant(), 5) == [1.0] * 5


def test_linear_warmup():
    assert run(LinearWarmup(steps=4), 6) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert run(LinearWarmup(steps=2, start=0.5), 3) == [0.5, 0.75, 1.0]


def test_cosine_decay():
    values = run(CosineDecay(steps=4, final=0.2), 6)
    expected = [0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * min(s / 4, 1))) for s in range(6)]
    assert values == pytest.approx(expected)
    assert values[0] == 1.0 and values[-1] == pytest.approx(0.2)


def test_chained_warmup_then_decay():
    values = run(Chained([LinearWarmup(steps=2), CosineDecay(steps=2)]), 6)
    assert values == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0, 0.0])


def test_state_round_trip_and_kind_check():
    a = Chained([LinearWarmup(steps=3), Constant()])
    run(a, 2)
    b = Chained([LinearWarmup(steps=3), Constant()])
    b.load_state_dict(a.state_dict())
    assert (b.step_count, b.value) == (2, a.value)
    with pytest.raises(ValueError, match="Chained"):
        Constant().load_state_dict(a.state_dict())


def test_bad_schedules():
    with pytest.raises(ValueError):
        LinearWarmup(steps=0)
    with pytest.raises(ValueError, match="last"):
        Chained([Constant(), LinearWarmup(steps=2)])
