"""Brain-likeness evaluation: load a model from a checkpoint, then evaluate its topo layers into report.json."""

from toponets_exp.evaluation.loading import LoadedModel, load_for_eval, task_data
from toponets_exp.evaluation.evaluate import Subject, evaluate
from toponets_exp.evaluation.settings import eval_plan, eval_settings

__all__ = ["LoadedModel", "Subject", "eval_plan", "eval_settings", "evaluate", "load_for_eval", "task_data"]
