"""LightningModules (they know nothing of TopoLoss)."""

from toponets_exp.lit.classifier import ImageClassifier

__all__ = ["ImageClassifier"]
