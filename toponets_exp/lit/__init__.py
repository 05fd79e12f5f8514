"""LightningModules (they know nothing of TopoLoss)."""

from toponets_exp.lit.causal_lm import CausalLM
from toponets_exp.lit.classifier import ImageClassifier

__all__ = ["CausalLM", "ImageClassifier"]
