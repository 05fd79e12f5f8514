"""Multi-objective search over config keys: the search space, the objectives read from a run, the study's storage."""
