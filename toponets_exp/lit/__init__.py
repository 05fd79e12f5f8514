"""LightningModules (they know nothing of TopoLoss) and the callbacks every trainer takes."""

from toponets_exp.lit.causal_lm import CausalLM
from toponets_exp.lit.classifier import ImageClassifier
from toponets_exp.lit.process_group import ReleaseProcessGroup
from toponets_exp.lit.progress import EpochLines, RunProgressBar, progress_callback
from toponets_exp.lit.schedule_notice import ScheduleNotice
from toponets_exp.lit.simclr import SimCLR

__all__ = ["CausalLM", "EpochLines", "ImageClassifier", "ReleaseProcessGroup", "RunProgressBar", "ScheduleNotice",
           "SimCLR", "progress_callback"]
