"""τ schedules: a multiplier m(step) on τ, advanced once per optimizer step, with checkpointable state."""

from __future__ import annotations

import math
from typing import Any


class Schedule:
    """Base schedule: counts optimizer steps; subclasses map the step to a multiplier on τ."""

    def __init__(self) -> None:
        self.step_count = 0

    def multiplier(self, step: int) -> float:
        """Multiplier on τ at a given optimizer step."""
        raise NotImplementedError

    @property
    def value(self) -> float:
        """Multiplier at the current step."""
        return self.multiplier(self.step_count)

    def step(self) -> None:
        """Advance by one optimizer step."""
        self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        """State to save in a checkpoint."""
        return {"step_count": self.step_count, "kind": type(self).__name__}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint, refusing a checkpoint made with another kind of schedule."""
        if state.get("kind", type(self).__name__) != type(self).__name__:
            raise ValueError(f"checkpoint holds a {state['kind']} τ schedule, the config asks for {type(self).__name__}")
        self.step_count = int(state["step_count"])


class Constant(Schedule):
    """τ unchanged (multiplier 1)."""

    def multiplier(self, step: int) -> float:
        return 1.0


class LinearWarmup(Schedule):
    """Multiplier rising linearly from `start` to 1 over `steps` optimizer steps, then 1."""

    def __init__(self, steps: int, start: float = 0.0) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"LinearWarmup steps must be >= 1, got {steps}")
        self.steps, self.start = int(steps), float(start)

    def multiplier(self, step: int) -> float:
        frac = min(step / self.steps, 1.0)
        return self.start + (1.0 - self.start) * frac


class CosineDecay(Schedule):
    """Multiplier decaying from 1 to `final` along a half cosine over `steps` optimizer steps, then `final`."""

    def __init__(self, steps: int, final: float = 0.0) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"CosineDecay steps must be >= 1, got {steps}")
        self.steps, self.final = int(steps), float(final)

    def multiplier(self, step: int) -> float:
        frac = min(step / self.steps, 1.0)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * frac))


class Chained(Schedule):
    """Schedules one after another: each runs for its `steps` (the last one runs on), on its own local step."""

    def __init__(self, schedules: list[Schedule]) -> None:
        super().__init__()
        if not schedules:
            raise ValueError("Chained needs at least one schedule")
        for s in schedules[:-1]:
            if not hasattr(s, "steps"):
                raise ValueError(f"{type(s).__name__} has no length, so it can only be the last of a chain")
        self.schedules = list(schedules)

    def multiplier(self, step: int) -> float:
        for s in self.schedules[:-1]:
            if step < s.steps:
                return s.multiplier(step)
            step -= s.steps
        return self.schedules[-1].multiplier(step)
