"""toponets_exp: train and evaluate topographic neural networks (TopoLoss)."""

__version__ = "0.1.0"
