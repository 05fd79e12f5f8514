"""hydra/sweeper=pareto: a multi-objective search of config keys on Optuna (toponets_exp.search), each trial a run
launched through the configured launcher (local, or Slurm with submitit), the study in a journal file in the sweep
directory: the same command run again continues it, each unfinished trial resumed in its own run directory."""

import logging
import time
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from toponets_exp.checks import integer
from toponets_exp.errors import ConfigError
from toponets_exp.search.sweeper_config import ParetoSweeperConf

log = logging.getLogger(__name__)
JOB_SUBDIR = "${hydra.job.num}"  # a trial's run directory: <sweep dir>/<trial number>


ConfigStore.instance().store(group="hydra/sweeper", name="pareto", node=ParetoSweeperConf, provider="toponets_exp")


class ParetoSweeper(Sweeper):
    """The search: ask a batch of trials, launch their runs, tell each its objectives (or failed), until n_trials."""

    def __init__(self, sampler: str, seed: int, startup_trials: int, n_trials: int, n_jobs: int, study_name: str,
                 objectives: dict[str, Any], params: dict[str, Any]) -> None:
        super().__init__()
        self.sampler_name, self.seed, self.study_name = sampler, seed, study_name
        self.startup_trials = integer("hydra.sweeper.startup_trials", startup_trials, 0)
        self.n_trials = integer("hydra.sweeper.n_trials", n_trials, 1)
        self.n_jobs = integer("hydra.sweeper.n_jobs", n_jobs, 1)
        self.goal_spec, self.param_spec = objectives, params
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list[Any]:
        """Run the search to n_trials told trials, continuing the study the sweep directory holds."""
        from toponets_exp.search.objectives import objectives  # Optuna is imported by a search only
        from toponets_exp.search.space import search_space
        from toponets_exp.search.study import finished, open_study, sampler, stale
        goals = objectives(OmegaConf.to_container(OmegaConf.create(self.goal_spec), resolve=True))
        space = search_space(OmegaConf.to_container(OmegaConf.create(self.param_spec), resolve=True))
        fixed = self._fixed(arguments, space)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        study = open_study(sweep_dir, self.study_name, goals,
                           lambda history: sampler(self.sampler_name, self.seed, self.startup_trials, history))
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = []
        for trial in stale(study):  # started by a driver that was killed: resumed in its own directory
            returns += self._launch(study, [trial], fixed, goals, sweep_dir)
        while finished(study) < self.n_trials:
            count = min(self.n_jobs, self.n_trials - finished(study))
            returns += self._launch(study, [study.ask(space) for _ in range(count)], fixed, goals, sweep_dir)
        log.info("search %s: %d trials told (%s)", self.study_name, finished(study), sweep_dir)
        return returns

    def _fixed(self, arguments: list[str], space: dict[str, Any]) -> list[str]:
        """The command line's overrides, the same for every trial (no sweep there: the space is searched)."""
        if OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir") != JOB_SUBDIR:
            raise ConfigError(f"hydra/sweeper=pareto keeps each trial in <sweep dir>/<trial number>: leave "
                              f"hydra.sweep.subdir at {JOB_SUBDIR}")
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(arguments)
        swept = [o.input_line for o in parsed if o.is_sweep_override() or o.get_key_element() in space]
        if swept:
            raise ConfigError(f"hydra/sweeper=pareto searches hydra.sweeper.params; {', '.join(swept)} on the command "
                              "line would sweep or fix a searched key: give it in hydra.sweeper.params instead")
        return list(arguments)

    def _launch(self, study: Any, trials: list[Any], fixed: list[str], goals: list[Any],
                sweep_dir: Path) -> list[Any]:
        """Run one batch of trials (consecutive numbers: each trial's job number is its number) and tell them."""
        from toponets_exp.search.space import overrides
        from toponets_exp.search.study import tell
        batch = [fixed + overrides(trial.params) + self._resume(sweep_dir / str(trial.number)) for trial in trials]
        self.validate_batch_is_legal(batch)
        results = self.launcher.launch(batch, initial_job_idx=trials[0].number)
        for trial, result in zip(trials, results):
            tell(study, trial.number, result, sweep_dir / str(trial.number), goals)
        return list(results)

    @staticmethod
    def _resume(run_dir: Path) -> list[str]:
        """resume=<its directory> for a trial whose run has a checkpoint there; a run stopped before its first is set
        aside (<dir>.stopped-<time>) and the trial starts again."""
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            return [f"resume={run_dir}"]
        if run_dir.exists():
            aside = run_dir.with_name(f"{run_dir.name}.stopped-{time.strftime('%Y%m%d-%H%M%S')}")
            run_dir.rename(aside)
            log.warning("trial directory %s held a run stopped before its first checkpoint: moved to %s", run_dir,
                        aside)
        return []
