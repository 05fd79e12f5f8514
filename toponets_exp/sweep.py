"""What a multirun sweeps over: recorded once in `<sweep dir>/sweep.yaml` by a Hydra callback, read by its jobs."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from toponets_exp.io import write_text

log = logging.getLogger(__name__)
SWEEP_FILE = "sweep.yaml"


def sweep_keys(overrides: Sequence[str]) -> list[str]:
    """The keys of the overrides that are sweeps (`topo.weight=0,5`, `range(...)`, `choice(...)`, ...)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]


def sweep_group(sweep_dir: str | Path) -> str:
    """A multirun's name: its sweep directory's name (with the date folder above it, in the default layout)."""
    path = Path(sweep_dir)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", path.parent.name):
        return f"{path.parent.name}_{path.name}"
    return path.name


def expected_jobs(sweep_dir: str | Path) -> list[list[str]] | None:
    """Each job's overrides, in job-number order, as the basic sweeper expands sweep.yaml (None without one)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        return None
    parsed = OverridesParser.create().parse_overrides([str(o) for o in OmegaConf.load(path).overrides])
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def varying_keys(sweep_dir: str | Path) -> list[str] | None:
    """The keys a multirun sweeps over, from its sweep.yaml (None when it has none)."""
    path = Path(sweep_dir) / SWEEP_FILE
    return [str(k) for k in OmegaConf.load(path).varying] if path.is_file() else None


def run_name(task_overrides: Sequence[str], varying: Sequence[str] | None) -> str | None:
    """A job's overrides of the keys that vary across its sweep, joined (all of them when that is unknown)."""
    keep = [o for o in task_overrides if varying is None or o.split("=", 1)[0].lstrip("+~") in varying]
    return ",".join(keep) or None


class SweepInfo(Callback):
    """Hydra callback: at the start of a multirun, write sweep.yaml (group, varying keys, the sweep's overrides); at
    its end, say where the runs are and how to tabulate them."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        log.info("Sweep finished: its runs are in %s/<job number>/; tabulate them with: python run.py task=report "
                 "report.sweep_dir=%s", sweep_dir, sweep_dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = config.hydra
        params = OmegaConf.select(hydra, "sweeper.params") or {}
        # The basic sweeper's order: its params, then the command line; a key given twice keeps its first place and
        # its last value (the command line overrides an experiment's sweep); jobs are numbered in this product's order.
        final: dict[str, str] = {}
        for override in [f"{key}={value}" for key, value in params.items()] + list(hydra.overrides.task):
            final[override.split("=", 1)[0]] = override
        overrides = list(final.values())
        sweep_dir = Path(str(hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        info = {"group": sweep_group(sweep_dir), "varying": sweep_keys(overrides), "overrides": overrides}
        write_text(sweep_dir / SWEEP_FILE, OmegaConf.to_yaml(OmegaConf.create(info)))
