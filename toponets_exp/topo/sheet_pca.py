"""A sheet's unit vectors and their principal components: what a picture of a weight sheet shows as colours."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

FULL_SATURATION_SHARE = 0.10  # a PC explaining this share of the variance (or more) spans the full colour range


def unit_vectors(vectors: np.ndarray, sheet: tuple[int, int]) -> np.ndarray:
    """Validated (H·W, dim) unit vectors, flattened and scaled to unit L2 norm (zero vectors stay zero)."""
    h, w = (int(s) for s in sheet)
    x = np.asarray(vectors, dtype=np.float64)
    if h < 1 or w < 1 or h * w < 2:
        raise ValueError(f"sheet={tuple(sheet)} must be (H, W) with H, W >= 1 and at least 2 units")
    if x.ndim < 2 or x.shape[0] != h * w:
        raise ValueError(
            f"vectors must be (n_units, dim...) with n_units = H·W = {h * w} for sheet={tuple(sheet)}, "
            f"got shape {x.shape}"
        )
    return np.ascontiguousarray(normalize(x.reshape(x.shape[0], -1), norm="l2"))


def sheet_principal_components(vectors: np.ndarray, sheet: tuple[int, int],
                               k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Scores (H, W, k) of the units' unit-norm vectors on their top k principal components, and variance shares."""
    h, w = (int(s) for s in sheet)
    x = unit_vectors(vectors, (h, w))
    n_comp = min(k, *x.shape)
    pca = PCA(n_components=n_comp, random_state=0).fit(x)
    scores = np.zeros((h * w, k))
    scores[:, :n_comp] = pca.transform(x)
    shares = np.zeros(k)
    shares[:n_comp] = pca.explained_variance_ratio_
    return scores.reshape(h, w, k), shares


def _robust_unit_range(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] between the 1st and 99th percentiles (clipped), 0.5 where the values are constant."""
    lo, hi = np.percentile(x, [1, 99])
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.full_like(x, 0.5)


def sheet_rgb(scores: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours in [0, 1] of a sheet's scores on PCs 1–3: each robustly rescaled, then its distance from
    mid-grey scaled by its variance share (full at FULL_SATURATION_SHARE or more), so weak PCs stay near grey."""
    saturation = np.clip(np.asarray(shares, dtype=np.float64)[:3] / FULL_SATURATION_SHARE, 0.0, 1.0)
    spread = np.stack([_robust_unit_range(scores[..., c]) for c in range(3)], axis=-1)
    return 0.5 + (spread - 0.5) * saturation
