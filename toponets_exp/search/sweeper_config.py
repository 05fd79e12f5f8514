"""hydra.sweeper.* of hydra/sweeper=pareto, as a structured config (registered by the sweeper plugin)."""

from dataclasses import dataclass, field
from typing import Any, Dict


@dataclass
class ParetoSweeperConf:
    """The search's settings: sampler, budget, batch, objectives and search space."""

    _target_: str = "hydra_plugins.toponets_pareto.pareto_sweeper.ParetoSweeper"
    sampler: str = "tpe"          # tpe (multi-objective TPE) | nsga2 | gp | random
    seed: int = 0                 # the sampler's
    startup_trials: int = 4       # tpe, gp: random trials before the model of the front guides the draws
    n_trials: int = 12            # trials told (complete or failed) when the search ends
    n_jobs: int = 1               # trials launched together (a batch; the launcher runs them in parallel if it can)
    study_name: str = "search"
    objectives: Dict[str, Any] = field(default_factory=dict)  # name: {path, direction}
    params: Dict[str, Any] = field(default_factory=dict)      # config key: {type, low, high, log} | {type, choices}
