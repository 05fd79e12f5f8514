"""Encoding-model predictivity: cross-validated ridge regression from model features to measured responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from toponets_exp.brain.stats import ArrayLike, as_float64


@dataclass(frozen=True)
class PredictivityResult:
    """Held-out Pearson r per target, their median, and the ridge penalty chosen per target."""

    r: np.ndarray
    median_r: float
    alpha: np.ndarray


def _columns_r(pred: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Pearson r per column between predictions and data; NaN where either column is constant."""
    zp, zd = pred - pred.mean(axis=0), data - data.mean(axis=0)
    denom = np.sqrt(np.sum(zp * zp, axis=0) * np.sum(zd * zd, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0.0, np.sum(zp * zd, axis=0) / denom, np.nan)


def _validated(features: ArrayLike, targets: ArrayLike, alphas: Sequence[float],
               n_splits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, p), targets (n, t) and the sorted alpha grid, checked against each other."""
    x, y = as_float64(features), as_float64(targets)
    y = y[:, None] if y.ndim == 1 else y
    grid = np.unique(np.asarray(alphas, dtype=np.float64))
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"features (n_stimuli, n_features) and targets (n_stimuli, n_targets) must share n_stimuli, "
            f"got shapes {x.shape} and {y.shape}"
        )
    if grid.size == 0 or np.any(grid <= 0.0):
        raise ValueError(f"alphas={list(alphas)} must be a non-empty list of positive ridge penalties")
    if not 2 <= n_splits <= x.shape[0] // 2:
        raise ValueError(f"n_splits={n_splits} must be in [2, n_stimuli / 2 = {x.shape[0] // 2}]")
    return x, y, grid


def ridge_predictivity(features: ArrayLike, targets: ArrayLike,
                       alphas: Sequence[float] = (0.1, 1, 10, 100, 1000), n_splits: int = 5,
                       seed: int = 0) -> PredictivityResult:
    """How well a linear readout of features predicts each target, by k-fold cross-validated ridge regression.

    Outer loop: KFold(n_splits, shuffled with `seed`). In each training fold the features are z-scored (fit on
    that fold) and sklearn's RidgeCV picks one penalty per target from `alphas` by its efficient leave-one-out
    (generalised) cross-validation on the training fold only, so nothing leaks from the held-out fold. The
    held-out predictions of all folds are pooled and r is Pearson(prediction, data) over all stimuli, per
    target. `alpha` is the penalty chosen most often across folds per target (ties: the smaller);
    `median_r` ignores targets with undefined r (constant target).
    """
    x, y, grid = _validated(features, targets, alphas, n_splits)
    pred = np.empty_like(y)
    chosen = np.empty((n_splits, y.shape[1]), dtype=np.int64)
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(x)
    for fold, (train, test) in enumerate(folds):
        scaler = StandardScaler().fit(x[train])
        model = RidgeCV(alphas=grid, alpha_per_target=True).fit(scaler.transform(x[train]), y[train])
        pred[test] = model.predict(scaler.transform(x[test])).reshape(len(test), -1)
        chosen[fold] = np.searchsorted(grid, np.broadcast_to(model.alpha_, (y.shape[1],)))
    votes = (chosen[:, :, None] == np.arange(grid.size)).sum(axis=0)  # (targets, alphas)
    r = _columns_r(pred, y)
    median_r = float(np.nanmedian(r)) if np.any(np.isfinite(r)) else float("nan")
    return PredictivityResult(r=r, median_r=median_r, alpha=grid[np.argmax(votes, axis=1)])
