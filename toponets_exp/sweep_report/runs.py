"""The runs of sweep directories: each run's overrides, config, status and headline numbers, read from its files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from toponets_exp.errors import ConfigError
from toponets_exp.sweep import expected_jobs, varying_keys

STATUSES = ("finished", "failed", "unfinished", "missing")
FAILURE_MARKS = ("Configuration error:", "Run failed:", "failed:")


@dataclass
class Run:
    """One job of a sweep, as its run directory shows it."""

    sweep: Path
    num: int
    path: Path
    status: str
    overrides: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    efficiency: dict[str, Any] = field(default_factory=dict)  # report.json's pruning / downsampling curves

    def override(self, key: str) -> str | None:
        """This run's value of an override key, as written on the command line."""
        for item in self.overrides:
            name, _, value = item.partition("=")
            if name.lstrip("+~") == key:
                return value
        return None

    def value(self, dotted: str) -> Any:
        """A value of the run's resolved config (dotted key), None if absent."""
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node


def _status(path: Path) -> str:
    """finished (summary.json), failed (the log names an error), unfinished (started, no result yet)."""
    if (path / "summary.json").is_file():
        return "finished"
    log = path / "run.log"
    if log.is_file() and any(mark in line for line in log.read_text(errors="replace").splitlines()[-50:]
                             for mark in FAILURE_MARKS):
        return "failed"
    return "unfinished"


def _read_run(sweep: Path, num: int, expected: list[str] | None) -> Run:
    """The run of job `num` (its directory may not exist yet)."""
    path = sweep / str(num)
    if not path.is_dir():
        return Run(sweep, num, path, "missing", expected or [])
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else (expected or [])
    config_file = next((f for f in (path / "config_resolved.yaml", path / ".hydra" / "config.yaml") if f.is_file()),
                       None)
    config = OmegaConf.to_container(OmegaConf.load(config_file), resolve=False) if config_file else {}
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    report = json.loads((path / "report.json").read_text()) if (path / "report.json").is_file() else {}
    return Run(sweep, num, path, _status(path), overrides, config, summary, report.get("efficiency") or {})


def collect(sweep_dirs: list[str | Path]) -> tuple[list[Run], list[str]]:
    """Every run of the sweep directories (expected jobs included), and the override keys that vary among them."""
    runs: list[Run] = []
    varying: list[str] = []
    for given in sweep_dirs:
        sweep = Path(given)
        if not sweep.is_dir():
            raise ConfigError(f"report.sweep_dir={given!r} is not a directory")
        jobs = expected_jobs(sweep)
        nums = {int(p.name) for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()}
        nums |= set(range(len(jobs))) if jobs else set()
        if not nums:
            raise ConfigError(f"report.sweep_dir={given!r} holds no runs (no numbered job directories and no "
                              "sweep.yaml); point it at a multirun directory")
        runs += [_read_run(sweep, n, jobs[n] if jobs and n < len(jobs) else None) for n in sorted(nums)]
        varying += [k for k in varying_keys(sweep) or [] if k not in varying]
    for key in sorted({o.partition("=")[0].lstrip("+~") for r in runs for o in r.overrides}):
        if key not in varying and len({r.override(key) for r in runs}) > 1:
            varying.append(key)
    return runs, varying
