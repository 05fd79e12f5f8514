"""toponets_exp: train and evaluate topographic neural networks (TopoLoss)."""

__version__ = "0.1.0"

from toponets_exp import resolvers as _resolvers  # noqa: E402 - the configs' resolvers, wherever a task runs
from toponets_exp import trainer_config as _trainer_config  # noqa: E402 - trainer=lightning, before Hydra composes

_resolvers.register()
_trainer_config.register()
