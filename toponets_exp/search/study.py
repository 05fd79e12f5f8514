"""The study of a search: Optuna's, stored in a journal file in the sweep directory (no server), so that the same
command run again continues it; its sampler; and how a launched run's result is told to it."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from toponets_exp.errors import ConfigError
from toponets_exp.search.objectives import Objective

log = logging.getLogger(__name__)
JOURNAL = "study.journal"
SAMPLERS = ("tpe", "nsga2", "gp", "random")


def sampler(name: str, seed: int, startup_trials: int, history: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler `name`: multi-objective TPE (its first `startup_trials` trials random), NSGA-II, a Gaussian process,
    or random; seeded from (seed, trials the study holds): a continued study draws anew, as the same history would."""
    seed = int(np.random.SeedSequence((seed, history)).generate_state(1)[0])
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"hydra.sweeper.sampler={name!r}: accepted: {', '.join(SAMPLERS)}")


def open_study(sweep_dir: Path, name: str, goals: Sequence[Objective],
               make_sampler: Callable[[int], optuna.samplers.BaseSampler]) -> optuna.Study:
    """The study in `<sweep_dir>/study.journal`, created or continued (its objectives must be the same), with the
    sampler `make_sampler(trials it holds)`."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(sweep_dir / JOURNAL)))
    directions = [goal.direction for goal in goals]
    study = optuna.create_study(storage=storage, study_name=name, directions=directions, load_if_exists=True)
    names = [goal.name for goal in goals]
    held = study.metric_names
    if [d.name.lower() for d in study.directions] != directions or (held is not None and held != names):
        had = ", ".join(d.name.lower() for d in study.directions)
        raise ConfigError(f"the study {name!r} in {sweep_dir} has objectives {held} ({had}), not {names} "
                          f"({', '.join(directions)}): use another hydra.sweep.dir or the same objectives")
    with warnings.catch_warnings():  # set_metric_names is marked experimental (since Optuna 3.2)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)
    study.sampler = make_sampler(len(study.trials))
    return study


def stale(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials a former driver started and never told (it was killed): to be run again, each in its own directory."""
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def finished(study: optuna.Study) -> int:
    """Trials told: complete or failed."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))


def tell(study: optuna.Study, number: int, result: Any, run_dir: Path, goals: Sequence[Objective]) -> None:
    """Tell a trial's outcome: its objectives from the run's files, or failed (a failed run, a missing value)."""
    try:
        result.return_value  # raises the run's exception, if it failed
    except Exception as err:  # noqa: BLE001 - any failure of the run fails the trial, never gives a number
        log.warning("trial %d (%s) failed: %s: %s", number, run_dir, type(err).__name__, err)
        study.tell(number, state=TrialState.FAIL)
        return
    values = [goal.read(run_dir) for goal in goals]
    missing = [goal.name for goal, value in zip(goals, values) if value is None]
    if missing:
        log.warning("trial %d (%s) has no value of %s: failed", number, run_dir, ", ".join(missing))
        study.tell(number, state=TrialState.FAIL)
        return
    study.tell(number, values)
    log.info("trial %d (%s): %s", number, run_dir, ", ".join(f"{g.name} {v:.4g}" for g, v in zip(goals, values)))
