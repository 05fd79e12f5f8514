"""Array coercion, per-unit two-sample statistics (Welch t, d′) and Benjamini–Hochberg FDR control."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import stats as sps


ArrayLike = np.ndarray | torch.Tensor


def as_float64(x: ArrayLike) -> np.ndarray:
    """A float64 numpy copy/view of an array or a (possibly GPU, bf16, grad-tracking) torch tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def unit_positions_of(positions: ArrayLike, units: int) -> np.ndarray:
    """Validated float64 (units, 2) positions, an (x, y) per unit, all finite."""
    p = as_float64(positions)
    if p.shape != (units, 2):
        raise ValueError(f"positions must be ({units}, 2), an (x, y) per unit, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("positions contain NaN or infinite entries")
    return p


def _groups(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated (n_a, units) and (n_b, units) float64 groups with at least 2 samples each."""
    a, b = as_float64(a), as_float64(b)
    a = a[:, None] if a.ndim == 1 else a
    b = b[:, None] if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"two-sample statistics need arrays (n_a, units) and (n_b, units) with the same units, "
            f"got shapes {a.shape} and {b.shape}"
        )
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"each group needs at least 2 samples, got n_a={a.shape[0]} and n_b={b.shape[0]}")
    return a, b


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0/0 := 0 (no difference and no variance is no evidence) and x/0 := ±inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where((num == 0) & (den == 0), 0.0, out)


def welch_t(a: ArrayLike, b: ArrayLike, ddof: int = 1) -> np.ndarray:
    """Welch's unequal-variance t per column: (mean_a − mean_b) / sqrt(s_a²/n_a + s_b²/n_b).

    ddof=1: sample variances (Welch's test, scipy); ddof=0: population variances, TDANN's `tstat` convention.
    """
    if ddof == 1:
        return welch_t_pvalues(a, b)[0]
    a, b = _groups(a, b)
    se = a.var(axis=0, ddof=ddof) / a.shape[0] + b.var(axis=0, ddof=ddof) / b.shape[0]
    return _ratio(a.mean(axis=0) - b.mean(axis=0), np.sqrt(se))


def welch_t_pvalues(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Welch t per column and its two-sided p-value with Welch–Satterthwaite degrees of freedom (scipy).

    A unit with zero variance in both groups is exact: no difference gives t=0, p=1 (no evidence); a difference
    gives t=±inf, p=0.
    """
    a, b = _groups(a, b)
    constant = (a.var(axis=0, ddof=1) == 0) & (b.var(axis=0, ddof=1) == 0)
    diff = a.mean(axis=0) - b.mean(axis=0)
    t = np.where(diff == 0, 0.0, np.copysign(np.inf, diff))
    p = np.where(diff == 0, 1.0, 0.0)
    if not constant.all():
        with warnings.catch_warnings():  # a group constant in a unit is exact, not scipy's feared cancellation
            warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
            result = sps.ttest_ind(a[:, ~constant], b[:, ~constant], equal_var=False, axis=0)
        t[~constant], p[~constant] = result.statistic, result.pvalue
    return t, p


def d_prime(a: ArrayLike, b: ArrayLike, ddof: int = 1) -> np.ndarray:
    """Sensitivity index per column: (mean_a − mean_b) / sqrt((s_a² + s_b²) / 2); sample variances (ddof=1) or
    population variances (ddof=0, TDANN's `dprime`)."""
    a, b = _groups(a, b)
    pooled = np.sqrt((a.var(axis=0, ddof=ddof) + b.var(axis=0, ddof=ddof)) / 2.0)
    return _ratio(a.mean(axis=0) - b.mean(axis=0), pooled)


def benjamini_hochberg(pvalues: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg step-up FDR control: (rejected mask, adjusted p), both shaped like pvalues."""
    p = as_float64(pvalues)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} is not a valid false discovery rate; use a value in (0, 1)")
    if p.size == 0 or not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("pvalues must be a non-empty array of values in [0, 1] (no NaN)")
    flat = p.ravel()
    order = np.argsort(flat, kind="stable")
    ranked = flat[order] * flat.size / np.arange(1, flat.size + 1)
    monotone = np.minimum.accumulate(ranked[::-1])[::-1]  # adjusted p_(i) = min_{j >= i} p_(j) m / j
    adjusted = np.empty_like(flat)
    adjusted[order] = np.minimum(monotone, 1.0)
    adjusted = adjusted.reshape(p.shape)
    return adjusted <= alpha, adjusted
