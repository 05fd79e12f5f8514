"""τ schedules: values along the steps and state round trips."""

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
    # by hand: 0.2 + 0.8 * (1 + cos(π s / 4)) / 2 with cos(π/4) = 0.7071068, cos(π/2) = 0, cos(3π/4) = -0.7071068
    assert values == pytest.approx([1.0, 0.8828427, 0.6, 0.3171573, 0.2, 0.2], abs=1e-7)


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
