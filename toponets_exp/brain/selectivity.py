"""Category-selectivity maps: per-unit Welch t and d′ of one category vs all other stimuli, on the sheet."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import torch

from toponets_exp.brain.map_statistics import t_map_morans
from toponets_exp.brain.stats import ArrayLike, as_float64, d_prime, welch_t

log = logging.getLogger(__name__)

# fMRI localiser convention (Kanwisher et al.): p < 1e-4 uncorrected, i.e. t ≈ 4 for the usual stimulus counts.
DEFAULT_T_THRESHOLD = 4.0


@dataclass(frozen=True)
class SelectivityMap:
    """One category's selectivity on the sheet: t and d′ maps (H, W), share of selective units, Moran's I of t (this
    project's rook convention and TopoLM's queen, row-standardised one)."""

    category: Hashable
    t: np.ndarray
    d_prime: np.ndarray
    fraction_selective: float
    threshold: float
    morans_i: float
    morans_i_topolm: float


def selectivity_map(responses: ArrayLike, labels: np.ndarray | torch.Tensor | list, category: Hashable,
                    sheet: tuple[int, int], threshold: float = DEFAULT_T_THRESHOLD, ddof: int = 1) -> SelectivityMap:
    """Selectivity of every unit for `category` vs all other stimuli, laid out row-major on the H×W sheet.

    responses: (n_stimuli, n_units) with n_units = H·W; labels: (n_stimuli,) category of each stimulus.
    A unit is selective when its Welch t exceeds `threshold` (positive preference only). Moran's I is
    computed on the t map (NaN if a zero-variance unit makes some t infinite). ddof=1: Welch's t and d′ with
    sample variances; ddof=0: population variances (TDANN's convention).
    """
    x = as_float64(responses)
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    h, w = (int(s) for s in sheet)
    if x.ndim != 2 or x.shape[1] != h * w:
        raise ValueError(
            f"responses must be (n_stimuli, n_units) with n_units = H·W = {h * w} for sheet={tuple(sheet)}, "
            f"got shape {x.shape}"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},) to match responses, got {y.shape}")
    inside = y == category
    if not inside.any():
        raise ValueError(f"category={category!r} is not among the labels; present: {sorted(set(y.tolist()))}")
    t = welch_t(x[inside], x[~inside], ddof=ddof)
    spatial, topolm = t_map_morans(t.reshape(h, w))
    if not np.all(np.isfinite(t)):
        log.warning("category %r: infinite t-values (zero-variance units); Moran's I set to NaN", category)
    return SelectivityMap(
        category=category,
        t=t.reshape(h, w),
        d_prime=d_prime(x[inside], x[~inside], ddof=ddof).reshape(h, w),
        fraction_selective=float(np.mean(t > threshold)),
        threshold=float(threshold),
        morans_i=spatial,
        morans_i_topolm=topolm,
    )
