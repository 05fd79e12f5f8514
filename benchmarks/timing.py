"""The benchmarks' timing record: seconds per call over repeats, described as median (IQR, min)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class Timing:
    """Seconds per call over repeats: median, quartiles, min and max."""

    samples: list[float]

    @property
    def median(self) -> float:
        """Median seconds."""
        return statistics.median(self.samples)

    def describe(self) -> str:
        """'median ms (IQR lo-hi, min)' for the table."""
        q = statistics.quantiles(self.samples, n=4) if len(self.samples) > 1 else [self.median] * 3
        return f"{self.median * 1e3:.1f} (IQR {q[0] * 1e3:.1f}-{q[2] * 1e3:.1f}, min {min(self.samples) * 1e3:.1f})"
