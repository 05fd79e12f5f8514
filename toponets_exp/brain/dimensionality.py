"""Effective dimensionality of a population response (participation ratio of the covariance spectrum)."""

from __future__ import annotations

import logging

import numpy as np

from toponets_exp.brain.stats import ArrayLike, as_float64

log = logging.getLogger(__name__)


def covariance_eigenvalues(features: ArrayLike) -> np.ndarray:
    """Sample-covariance eigenvalues of X (n_stimuli, n_units), descending; min(n, p) of them (the rest are 0).

    Computed from the smaller of the two Gram matrices of the centred data (n×n or p×p), which share their
    non-zero spectrum, so a layer with 10⁵ units and 10³ stimuli costs an n×n eigendecomposition.
    """
    x = as_float64(features)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(
            f"features must be a 2-D array (n_stimuli >= 2, n_units >= 1), got shape {x.shape}"
        )
    x = x - x.mean(axis=0)
    gram = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    eig = np.linalg.eigvalsh(gram / (x.shape[0] - 1))[::-1]
    return np.clip(eig, 0.0, None)


def effective_dimensionality(features: ArrayLike) -> float:
    """(Σλ)² / Σλ² of the covariance eigenvalues of X (n_stimuli, n_units); NaN when X has no variance."""
    eig = covariance_eigenvalues(features)
    total = eig.sum()
    if total <= 0.0:
        log.warning("effective dimensionality is undefined for features with zero variance; returning NaN")
        return float("nan")
    return float(total**2 / np.sum(eig**2))
