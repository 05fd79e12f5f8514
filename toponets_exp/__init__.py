"""toponets_exp: train and evaluate topographic neural networks (TopoLoss)."""

__version__ = "0.1.0"

from toponets_exp import resolvers as _resolvers  # noqa: E402 - the configs' resolvers, wherever a task runs

_resolvers.register()
