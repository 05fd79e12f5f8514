"""The objectives of a search, named in YAML: a value of a run's summary.json (a dotted path) or of its metrics.csv
(`metrics:<column>`, its last logged value), with a direction. A search chooses on validation data: a test metric,
or an evaluation measure of the evaluation's stimuli (the test split by default), is refused."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toponets_exp.errors import ConfigError

DIRECTIONS = ("maximize", "minimize")
METRICS = "metrics:"
WEIGHT_MEASURES = {"eval.weight_smoothness"}  # evaluation measures of the weights alone (no stimuli)


@dataclass(frozen=True)
class Objective:
    """One objective: its name, where a run keeps it, and whether larger is better."""

    name: str
    path: str
    direction: str

    def read(self, run_dir: Path) -> float | None:
        """The run's value (None when it has none, or a non-finite one)."""
        if self.path.startswith(METRICS):
            value = _last_logged(run_dir / "metrics.csv", self.path[len(METRICS):])
        else:
            value = _summary_value(run_dir / "summary.json", self.path)
        return value if value is not None and math.isfinite(value) else None


def _summary_value(path: Path, dotted: str) -> float | None:
    """summary.json's number at a dotted path, else None."""
    if not path.is_file():
        return None
    node: Any = json.loads(path.read_text())
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _last_logged(path: Path, column: str) -> float | None:
    """The last non-empty value of a metrics.csv column, else None."""
    if not path.is_file():
        return None
    with path.open(newline="") as stream:
        values = [row[column] for row in csv.DictReader(stream) if row.get(column)]
    return float(values[-1]) if values else None


def _checked_path(name: str, path: Any) -> str:
    """A path a search may choose on: not a test metric, not a measure of the evaluation's stimuli."""
    if not isinstance(path, str) or path in ("", METRICS):
        raise ConfigError(f"hydra.sweeper.objectives.{name}.path={path!r}: accepted: a dotted path of summary.json "
                          "(best_score, topo.mean_unweighted, eval.weight_smoothness) or metrics:<column> (val/acc)")
    parts = path[len(METRICS):].replace("/", ".").split(".") if path.startswith(METRICS) else path.split(".")
    if any(part.startswith("test") for part in parts):
        raise ConfigError(f"hydra.sweeper.objectives.{name}.path={path!r} is a test metric: a search chooses on "
                          "validation data (metrics:val/acc, best_score); the report gives the chosen runs' test "
                          "numbers")
    if parts[0] == "eval" and path not in WEIGHT_MEASURES:
        raise ConfigError(f"hydra.sweeper.objectives.{name}.path={path!r} is measured on the evaluation's stimuli "
                          f"(the test split by default); accepted evaluation measures: {', '.join(WEIGHT_MEASURES)}")
    return path


def objectives(spec: Mapping[str, Any]) -> list[Objective]:
    """The named objectives, checked: {name: {path, direction}}, at least one."""
    if not spec:
        raise ConfigError("hydra.sweeper.objectives is empty: name at least one, e.g. "
                          "{val_acc: {path: 'metrics:val/acc', direction: maximize}}")
    made = []
    for name, entry in spec.items():
        if not isinstance(entry, Mapping) or set(entry) != {"path", "direction"}:
            raise ConfigError(f"hydra.sweeper.objectives.{name}={entry!r}: accepted: {{path, direction}}")
        if entry["direction"] not in DIRECTIONS:
            raise ConfigError(f"hydra.sweeper.objectives.{name}.direction={entry['direction']!r}: accepted: "
                              f"{', '.join(DIRECTIONS)}")
        made.append(Objective(str(name), _checked_path(str(name), entry["path"]), entry["direction"]))
    return made
