"""A model's accuracy as a comparison reads it: its classifier's on the task's test split where it has one that fits,
and a linear read-out of its pooled features on held-out evaluation stimuli (every vision model, so that a trunk
without a classifier, such as TDANN's SimCLR models, has a comparable number)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch.utils.data import DataLoader
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from toponets_exp.evaluation.context import EvalContext, phase
from toponets_exp.evaluation.recording import record_activations

READOUT = "logistic regression (L2, C=1) on standardised features"


def linear_readout(features: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int) -> dict[str, Any]:
    """Category accuracy of a linear classifier fitted on a stratified split of the stimuli and scored on the rest;
    None (with why) when a category has fewer than two stimuli or the split leaves a side without every category."""
    labels = np.asarray(labels)
    categories, counts = np.unique(labels, return_counts=True)
    base = {"classifier": READOUT, "test_fraction": test_fraction, "seed": seed, "categories": len(categories),
            "chance": 1.0 / len(categories) if len(categories) else None}
    if len(categories) < 2 or counts.min() < 2:
        return {**base, "accuracy": None, "why_none": "needs >= 2 categories of >= 2 stimuli each"}
    try:
        train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=test_fraction,
                                                            stratify=labels, random_state=seed)
    except ValueError as err:  # a test side smaller than the number of categories
        return {**base, "accuracy": None, "why_none": str(err)}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train_x, train_y)
    return {**base, "accuracy": float(model.score(test_x, test_y)), "train": int(len(train_y)),
            "test": int(len(test_y)), "features": int(features.shape[1])}


def headline_accuracy(model_level: Mapping[str, Any]) -> dict[str, Any]:
    """The accuracy a comparison plots: the classifier's on the task's test split (efficiency at sparsity 0, or the
    positioned evaluation's task_accuracy) where it ran, else the linear read-out's on held-out stimuli; what it is,
    in words."""
    efficiency = model_level.get("efficiency") or {}
    pruning = efficiency.get("pruning", {}) if efficiency.get("metric") == "accuracy" else {}
    base = next((v for k, v in pruning.items() if float(k) == 0.0), model_level.get("task_accuracy"))
    if base is not None:
        return {"value": base, "source": "classifier", "what": "the model's classifier, task test split"}
    readout = model_level.get("readout") or {}
    if readout.get("accuracy") is not None:
        return {"value": readout["accuracy"], "source": "readout",
                "what": f"linear read-out of {readout['layer']}, {readout['test']} held-out stimuli"}
    return {"value": None, "source": None, "what": "no classifier on the task's data and no read-out"}


def readout(ctx: EvalContext, loader: DataLoader, named: np.ndarray) -> dict[str, Any] | None:
    """The linear read-out of model.eval.readout's features on held-out stimuli; None when the model names none."""
    layer = ctx.model_eval.get("readout")
    if layer is None:
        ctx.note("eval.readout: the model's yaml names no model.eval.readout layer, so no read-out accuracy")
        return None
    phase("linear read-out of %s on held-out stimuli", layer)
    features = record_activations(ctx.net, [layer], (x for x, _ in loader), reduce="flatten", device=ctx.device,
                                  progress=False)[layer]
    ev = ctx.settings
    return {"layer": layer, **linear_readout(features, named, ev.readout_test_fraction, ev.seed)}
