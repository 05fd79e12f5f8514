"""The hypervolume of a two-objective front: the area its points dominate beyond a reference point, the measure of
how much of the trade-off a set of runs found (larger is better; the same reference for the sets compared)."""

from __future__ import annotations

from collections.abc import Sequence


def hypervolume_2d(points: Sequence[tuple[float, float]], reference: tuple[float, float],
                   directions: tuple[str, str] = ("maximize", "maximize")) -> float:
    """The area dominated by `points` and bounded by `reference` (each objective maximized or minimized); points not
    better than the reference in both objectives add nothing."""
    signs = [1.0 if d == "maximize" else -1.0 if d == "minimize" else None for d in directions]
    if None in signs:
        raise ValueError(f"directions {directions!r}: each is maximize or minimize")
    ref = (signs[0] * reference[0], signs[1] * reference[1])
    better = sorted(((signs[0] * x, signs[1] * y) for x, y in points if signs[0] * x > ref[0] and signs[1] * y > ref[1]),
                    reverse=True)
    area, reached = 0.0, ref[1]
    for x, y in better:  # by x descending: each point adds the strip above the highest y reached so far
        if y > reached:
            area += (x - ref[0]) * (y - reached)
            reached = y
    return area
