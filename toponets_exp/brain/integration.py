"""Temporal integration windows of language-model units by word swapping (after Skrill & Norman-Haignere 2023).

Procedure
---------
1. Sequences. Each sentence is split into words at whitespace; sentences with fewer than L = C + 1 words are
   dropped and the others cut to their first L words. The last word is the *target*; the word at distance j
   (j = 1..C) is the j-th word before it. C (`context_words`) defaults to max(distances) + 1, so even the
   largest distance leaves one word to swap.
2. Donors. The sequences are put in a random cycle (seeded), and each one's donor is the next sequence in it, so no
   sequence is its own donor and every sequence donates once.
3. Swaps. For each distance d (0 is always included), the swapped sequence keeps the target and its d nearest
   context words and replaces every context word at distance > d by the donor's word at the same position. d = 0
   swaps the whole context; larger d keeps more of it intact.
4. Responses. `responses(texts) -> (n_texts, units)` gives each unit's response to the target, e.g. the
   last-token activation of a layer (`activations.text_responses(..., reduce="last")`), for the intact and every
   swapped set.
5. Change. Per unit and distance, Δ(d) = RMS over sequences of (r_swapped(d) − r_intact). The sensitivity curve
   s(d) = Δ(d) / Δ(0) is the share of the unit's context dependence that comes from words beyond distance d:
   s(0) = 1 and it decays to 0 once the unit's window is covered. `context_sensitivity` = Δ(0) / (√2 · std of
   r_intact) is ~1 for a unit driven by context only (swapping the context then behaves like drawing an unrelated
   stimulus) and 0 for one that sees only the target; units with Δ(0) = 0 get NaN curves and no window.
6. Fits. Per unit, s(d) = exp(−d/τ) and s(d) = (1 + d)^(−α) are fitted by least squares in linear space (a
   log-spaced grid over the parameter, then golden-section refinement in log-parameter), both equal to 1 at d = 0.
   The better model has the lower sum of squared errors; the unit's window is the distance at which its fitted
   curve falls to 1/e: τ for the exponential, e^(1/α) − 1 for the power law.

Caveat: a donor's words rarely have the original words' token count, so a swap also moves the target's absolute
position by a few tokens. Models with learned absolute position embeddings (GPT-2, GPT-Neo) respond to that shift
as well, which puts a floor under Δ(d) at every d < C; the raw `change` is kept so the floor can be inspected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

Responses = Callable[[list[str]], np.ndarray]

TAU_RANGE = (1e-2, 1e4)
ALPHA_RANGE = (1e-2, 1e2)
GRID_POINTS = 241
GOLDEN_STEPS = 60


def exponential(d: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """exp(−d/τ)."""
    return np.exp(-d / tau)


def power_law(d: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(1 + d)^(−α)."""
    return (1.0 + d) ** (-alpha)


def fit_decay(curves: np.ndarray, distances: np.ndarray, model: Callable[[np.ndarray, np.ndarray], np.ndarray],
              bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares one-parameter fit of model(d, θ) to every row of `curves`: (θ, SSE) per row.

    A log-spaced grid over `bounds` locates each row's minimum, golden-section search in log θ between the
    neighbouring grid points refines it (vectorised over rows).
    """
    d = distances.astype(np.float64)
    log_grid = np.linspace(np.log(bounds[0]), np.log(bounds[1]), GRID_POINTS)
    preds = model(d[None, :], np.exp(log_grid)[:, None])  # (G, D)
    sse_grid = (curves**2).sum(1, keepdims=True) - 2.0 * curves @ preds.T + (preds**2).sum(1)[None, :]
    best = sse_grid.argmin(axis=1)
    lo = log_grid[np.clip(best - 1, 0, GRID_POINTS - 1)]
    hi = log_grid[np.clip(best + 1, 0, GRID_POINTS - 1)]

    def sse(log_theta: np.ndarray) -> np.ndarray:
        """SSE of every row at its own parameter."""
        return ((curves - model(d[None, :], np.exp(log_theta)[:, None])) ** 2).sum(1)

    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = sse(a), sse(b)
    for _ in range(GOLDEN_STEPS):
        left = fa < fb  # minimum in [lo, b]: shrink from the right, else from the left
        lo, hi = np.where(left, lo, a), np.where(left, b, hi)
        a_new = np.where(left, hi - ratio * (hi - lo), b)
        b_new = np.where(left, a, lo + ratio * (hi - lo))
        fa_new = np.where(left, sse(a_new), fb)
        fb_new = np.where(left, fa, sse(b_new))
        a, b, fa, fb = a_new, b_new, fa_new, fb_new
    theta = (lo + hi) / 2.0
    return np.exp(theta), sse(theta)


@dataclass(frozen=True)
class IntegrationResult:
    """Per-unit sensitivity curves over context distance, exponential and power-law fits, and windows."""

    distances: np.ndarray
    curves: np.ndarray
    change: np.ndarray
    context_sensitivity: np.ndarray
    tau: np.ndarray
    alpha: np.ndarray
    sse_exponential: np.ndarray
    sse_power: np.ndarray
    best_model: np.ndarray
    window: np.ndarray
    n_sequences: int
    context_words: int

    @property
    def beyond_measured(self) -> np.ndarray:
        """Units whose fitted window lies past the largest distance measured (an extrapolation of the fit)."""
        return np.nan_to_num(self.window, nan=-1.0) > self.distances.max()

    def summary(self) -> dict[str, float]:
        """Scalar results for a report over the fitted units: median window with windows past the largest distance
        measured counted as beyond it (NaN when the median itself is beyond: the data do not bound it), the share of
        such units, and the share of power-law units."""
        fitted = self.best_model != "none"
        n = int(fitted.sum())
        censored = np.where(self.beyond_measured, np.inf, self.window)[fitted]
        median = float(np.median(censored)) if n else float("nan")
        return {
            "n_units_fitted": n,
            "max_distance_measured": int(self.distances.max()),
            "median_window": median if np.isfinite(median) else float("nan"),
            "fraction_beyond_measured": float(np.mean(self.beyond_measured[fitted])) if n else float("nan"),
            "fraction_power_law": float(np.mean(self.best_model[fitted] == "power")) if n else float("nan"),
            "median_context_sensitivity": float(np.nanmedian(self.context_sensitivity)) if n else float("nan"),
        }


def _sequences(sentences: Sequence[str], length: int) -> list[list[str]]:
    """The first `length` words of every sentence that has at least that many."""
    return [words[:length] for words in (s.split() for s in sentences) if len(words) >= length]


def _distances(distances: Sequence[int]) -> np.ndarray:
    """Sorted unique non-negative integer distances, 0 included."""
    values = []
    for d in distances:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
            raise ValueError(f"distances must be non-negative integers (words between context and target), got {d!r}")
        values.append(int(d))
    return np.array(sorted({0, *values}))


def swapped_texts(sequences: list[list[str]], donors: np.ndarray, d: int) -> list[str]:
    """Each sequence with its context words beyond distance d replaced by its donor's words at those positions."""
    cut = len(sequences[0]) - 1 - d
    return [" ".join(sequences[int(donor)][:cut] + words[cut:]) for words, donor in zip(sequences, donors)]


def _checked(responses: Responses, texts: list[str], units: int | None) -> np.ndarray:
    """responses(texts) as a float64 (n_texts, units) array, or a ValueError on a wrong shape."""
    out = np.asarray(responses(texts), dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != len(texts) or (units is not None and out.shape[1] != units):
        raise ValueError(f"responses(texts) must return (n_texts={len(texts)}, units) for every call, got {out.shape}")
    return out


def integration_windows(responses: Responses, sentences: Sequence[str],
                        distances: Sequence[int] = (0, 1, 2, 3, 4, 6, 8), seed: int = 0,
                        context_words: int | None = None) -> IntegrationResult:
    """Word-swap integration windows of every unit that `responses` reports (procedure in the module docstring)."""
    dist = _distances(distances)
    n_context = int(dist.max()) + 1 if context_words is None else int(context_words)
    if n_context <= dist.max():
        raise ValueError(f"context_words={n_context} must exceed the largest distance {dist.max()}")
    sequences = _sequences(sentences, n_context + 1)
    if len(sequences) < 2:
        raise ValueError(f"only {len(sequences)} sentences have >= {n_context + 1} words (context_words + target); "
                          "give more or longer sentences, or smaller distances")
    cycle = np.random.default_rng(seed).permutation(len(sequences))
    donors = np.empty(len(sequences), dtype=int)
    donors[cycle] = np.roll(cycle, -1)
    intact = _checked(responses, [" ".join(words) for words in sequences], None)
    columns = []
    for i, d in enumerate(dist):
        log.info("Integration windows: %d sequences with the context beyond distance %d swapped (%d of %d)",
                 len(sequences), d, i + 1, len(dist))
        swapped = _checked(responses, swapped_texts(sequences, donors, int(d)), intact.shape[1])
        columns.append(np.sqrt(np.mean((swapped - intact) ** 2, axis=0)))
    change = np.stack(columns, axis=1)  # (units, D)
    valid = np.isfinite(change).all(axis=1) & (change[:, 0] > 0)
    curves = np.full_like(change, np.nan)
    curves[valid] = change[valid] / change[valid, :1]
    spread = intact.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = np.where(spread > 0, change[:, 0] / (np.sqrt(2.0) * spread), np.nan)
    fits = {}
    for name, model, bounds in (("exponential", exponential, TAU_RANGE), ("power", power_law, ALPHA_RANGE)):
        theta, sse = np.full(len(change), np.nan), np.full(len(change), np.nan)
        if valid.any():
            theta[valid], sse[valid] = fit_decay(curves[valid], dist, model, bounds)
        fits[name] = (theta, sse)
    (tau, sse_exp), (alpha, sse_pow) = fits["exponential"], fits["power"]
    power_wins = sse_pow < sse_exp
    best = np.where(valid, np.where(power_wins, "power", "exponential"), "none")
    window = np.where(power_wins, np.expm1(1.0 / alpha), tau)  # α >= 0.01 keeps e^(1/α) finite
    return IntegrationResult(
        distances=dist, curves=curves, change=change, context_sensitivity=sensitivity, tau=tau, alpha=alpha,
        sse_exponential=sse_exp, sse_power=sse_pow, best_model=best, window=np.where(valid, window, np.nan),
        n_sequences=len(sequences), context_words=n_context,
    )
