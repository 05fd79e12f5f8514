"""toponets_exp's Hydra sweeper: a multi-objective search (hydra/sweeper=pareto)."""
