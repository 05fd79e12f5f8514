"""Brain-likeness evaluation: settings checked from the config, a model loaded from a checkpoint, then its topo
layers evaluated into report.json."""

from toponets_exp.evaluation.context import check_model_settings
from toponets_exp.evaluation.evaluate import evaluate
from toponets_exp.evaluation.loading import EvalModel, TaskData, load_for_eval, no_classifier, task_data
from toponets_exp.evaluation.positioned import positions_for
from toponets_exp.evaluation.settings import EvalSettings, eval_settings

__all__ = ["EvalModel", "EvalSettings", "TaskData", "check_model_settings", "eval_settings", "evaluate", "load_for_eval",
           "no_classifier", "positions_for", "task_data"]
