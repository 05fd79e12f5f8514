"""LightningModules (they know nothing of TopoLoss) and the process-group callback every trainer takes."""

from toponets_exp.lit.causal_lm import CausalLM
from toponets_exp.lit.classifier import ImageClassifier
from toponets_exp.lit.process_group import ReleaseProcessGroup

__all__ = ["CausalLM", "ImageClassifier", "ReleaseProcessGroup"]
