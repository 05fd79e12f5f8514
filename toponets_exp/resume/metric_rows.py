"""The rows of metrics.csv a run checkpoint accounts for: counted when it is written, kept when a run resumes."""

from __future__ import annotations

import csv
from pathlib import Path

from toponets_exp.io import write_csv

METRIC_ROWS = "metrics_rows"  # checkpoint key: rows of metrics.csv that precede this checkpoint's state


def count_rows(metrics_csv: Path) -> int:
    """Data rows of a metrics CSV (0 when it does not exist yet)."""
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def truncate_metrics(metrics_csv: Path, rows: int) -> int:
    """Keep the first `rows` rows of metrics.csv (those before the resumed checkpoint); returns how many went."""
    if not metrics_csv.is_file():
        return 0
    with metrics_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, all_rows = reader.fieldnames or [], list(reader)
    kept = all_rows[:rows]
    write_csv(metrics_csv, fields, kept)
    return len(all_rows) - len(kept)
