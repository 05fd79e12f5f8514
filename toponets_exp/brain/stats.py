"""Array coercion, per-unit two-sample statistics (Welch t, d′) and Benjamini–Hochberg FDR control."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats as sps

from toponets_exp.errors import ConfigError

ArrayLike = np.ndarray | torch.Tensor


def as_float64(x: ArrayLike) -> np.ndarray:
    """A float64 numpy copy/view of an array or a (possibly GPU, bf16, grad-tracking) torch tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _groups(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated (n_a, units) and (n_b, units) float64 groups with at least 2 samples each."""
    a, b = as_float64(a), as_float64(b)
    a = a[:, None] if a.ndim == 1 else a
    b = b[:, None] if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ConfigError(
            f"two-sample statistics need arrays (n_a, units) and (n_b, units) with the same units, "
            f"got shapes {a.shape} and {b.shape}"
        )
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ConfigError(f"each group needs at least 2 samples, got n_a={a.shape[0]} and n_b={b.shape[0]}")
    return a, b


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, with 0/0 := 0 (no difference and no variance is no evidence) and x/0 := ±inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where((num == 0) & (den == 0), 0.0, out)


def _welch_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean difference and the two squared standard errors s²/n per unit."""
    se_a = a.var(axis=0, ddof=1) / a.shape[0]
    se_b = b.var(axis=0, ddof=1) / b.shape[0]
    return a.mean(axis=0) - b.mean(axis=0), se_a, se_b


def welch_t(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Welch's unequal-variance t per column: (mean_a − mean_b) / sqrt(s_a²/n_a + s_b²/n_b)."""
    diff, se_a, se_b = _welch_parts(*_groups(a, b))
    return _ratio(diff, np.sqrt(se_a + se_b))


def welch_t_pvalues(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Welch t per column and its two-sided p-value with Welch–Satterthwaite degrees of freedom."""
    a, b = _groups(a, b)
    diff, se_a, se_b = _welch_parts(a, b)
    t = _ratio(diff, np.sqrt(se_a + se_b))
    df_den = se_a**2 / (a.shape[0] - 1) + se_b**2 / (b.shape[0] - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (se_a + se_b) ** 2 / df_den
    p = 2.0 * sps.t.sf(np.abs(t), np.where(df_den > 0, df, 1.0))
    p = np.where(np.isinf(t), 0.0, np.where(df_den > 0, p, 1.0))  # zero variance: exact difference, or none
    return t, p


def d_prime(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Sensitivity index per column: (mean_a − mean_b) / sqrt((s_a² + s_b²) / 2), sample variances (ddof=1)."""
    a, b = _groups(a, b)
    pooled = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / 2.0)
    return _ratio(a.mean(axis=0) - b.mean(axis=0), pooled)


def benjamini_hochberg(pvalues: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg step-up FDR control: (rejected mask, adjusted p), both shaped like pvalues."""
    p = as_float64(pvalues)
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha={alpha} is not a valid false discovery rate; use a value in (0, 1)")
    if p.size == 0 or not np.all((p >= 0.0) & (p <= 1.0)):
        raise ConfigError("pvalues must be a non-empty array of values in [0, 1] (no NaN)")
    flat = p.ravel()
    order = np.argsort(flat, kind="stable")
    ranked = flat[order] * flat.size / np.arange(1, flat.size + 1)
    monotone = np.minimum.accumulate(ranked[::-1])[::-1]  # adjusted p_(i) = min_{j >= i} p_(j) m / j
    adjusted = np.empty_like(flat)
    adjusted[order] = np.minimum(monotone, 1.0)
    adjusted = adjusted.reshape(p.shape)
    return adjusted <= alpha, adjusted
