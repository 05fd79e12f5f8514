"""Similarity-vs-distance curves and smoothness scores against brute-force pair loops and synthetic sheets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toponets_exp.brain import response_profiles, similarity_by_distance, smoothness
from toponets_exp.brain.smoothness import largest_outward_drop, sample_pairs, triangle_pairs


def smooth_sheet(h: int, w: int, dim: int = 24, seed: int = 0) -> np.ndarray:
    """(h·w, dim) vectors that vary smoothly with sheet position: random Fourier features of (row, col)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.divmod(np.arange(h * w), w)
    freq = rng.normal(scale=0.25, size=(2, dim))
    phase = rng.uniform(0, 2 * np.pi, size=dim)
    return np.cos(np.stack([rows, cols], axis=1) @ freq + phase)


def brute_force_curve(vectors: np.ndarray, w: int) -> dict[int, tuple[float, int]]:
    """{bin: (mean cosine, count)} over all pairs by a plain double loop."""
    sums: dict[int, list[float]] = {}
    n = vectors.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            d = np.hypot(i // w - j // w, i % w - j % w)
            cos = vectors[i] @ vectors[j] / (np.linalg.norm(vectors[i]) * np.linalg.norm(vectors[j]))
            sums.setdefault(int(round(d)), []).append(cos)
    return {k: (float(np.mean(v)), len(v)) for k, v in sums.items()}


def test_curve_bins_match_brute_force() -> None:
    h, w = 5, 7
    vectors = np.random.default_rng(1).normal(size=(h * w, 6))
    curve = similarity_by_distance(vectors, (h, w))
    expected = brute_force_curve(vectors, w)
    assert list(curve.distances) == sorted(expected)
    np.testing.assert_allclose(curve.similarity, [expected[k][0] for k in sorted(expected)], rtol=1e-12)
    np.testing.assert_array_equal(curve.counts, [expected[k][1] for k in sorted(expected)])
    assert curve.counts.sum() == h * w * (h * w - 1) // 2


def test_triangle_index_mapping_matches_numpy() -> None:
    for n in (2, 3, 50, 101):
        i, j = triangle_pairs(np.arange(n * (n - 1) // 2), n)
        ti, tj = np.triu_indices(n, 1)
        np.testing.assert_array_equal(i, ti)
        np.testing.assert_array_equal(j, tj)
    n = 300_000  # far beyond float32 precision of the closed form
    last = n * (n - 1) // 2 - 1
    i, j = triangle_pairs(np.array([0, n - 2, n - 1, last]), n)
    np.testing.assert_array_equal(i, [0, 0, 1, n - 2])
    np.testing.assert_array_equal(j, [1, n - 1, 2, n - 1])


def test_subsampled_pairs_are_unique_seeded_and_keep_every_neighbour() -> None:
    h, w = 40, 50
    i, j = sample_pairs((h, w), 50_000, seed=3)
    assert i.size <= 50_000 and np.all(i < j)
    assert np.unique(i * h * w + j).size == i.size
    near = np.hypot(i // w - j // w, i % w - j % w) < 1.5
    assert near.sum() == h * (w - 1) + (h - 1) * w + 2 * (h - 1) * (w - 1)
    again = sample_pairs((h, w), 50_000, seed=3)
    np.testing.assert_array_equal(i, again[0])
    assert not np.array_equal(i, sample_pairs((h, w), 50_000, seed=4)[0])


def test_subsampled_curve_estimates_the_exhaustive_curve() -> None:
    h, w = 30, 40
    vectors = smooth_sheet(h, w)
    full = similarity_by_distance(vectors, (h, w), max_pairs=10**7)
    sub = similarity_by_distance(vectors, (h, w), max_pairs=60_000, seed=0)
    assert full.counts.sum() == h * w * (h * w - 1) // 2 and sub.counts.sum() <= 60_000
    assert sub.counts[0] == full.counts[0]  # the nearest bin is kept whole
    common = np.isin(full.distances, sub.distances) & (full.counts > 2000)
    np.testing.assert_allclose(sub.similarity[np.isin(sub.distances, full.distances[common])],
                               full.similarity[common], atol=0.03)


def test_smooth_sheet_scores_high_and_shuffled_sheet_scores_zero() -> None:
    h, w = 24, 32
    vectors = smooth_sheet(h, w)
    shuffled = np.random.default_rng(7).permutation(vectors)
    for method in ("near_minus_far", "max_minus_min"):
        smooth = smoothness(vectors, (h, w), method=method)
        null = smoothness(shuffled, (h, w), method=method)
        assert smooth.method == method
        assert smooth.value > 0.5, method
        assert abs(null.value) < 0.05, method
    assert smoothness(vectors, (h, w)).curve.similarity[0] > 0.9


def test_near_minus_far_matches_its_definition() -> None:
    h, w = 6, 9
    vectors = np.random.default_rng(2).normal(size=(h * w, 5))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    half_diag = np.hypot(h - 1, w - 1) / 2
    near, far = [], []
    for i in range(h * w):
        for j in range(i + 1, h * w):
            d = np.hypot(i // w - j // w, i % w - j % w)
            (near if d < 1.5 else far if d > half_diag else []).append(unit[i] @ unit[j])
    assert smoothness(vectors, (h, w)).value == pytest.approx(np.mean(near) - np.mean(far), rel=1e-12)


def test_opposed_far_units_score_above_one() -> None:
    h, w = 4, 16
    cols = np.arange(h * w) % w
    angle = np.pi * cols / (w - 1)  # direction rotates by 180° across the sheet
    vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    assert smoothness(vectors, (h, w)).value > 1.0


def test_max_minus_min_and_tdann_match_brute_force() -> None:
    h, w = 20, 20
    profiles = 2.0 + smooth_sheet(h, w, dim=40)
    unit = profiles / np.linalg.norm(profiles, axis=1, keepdims=True)  # cosine of the vectors as given
    groups: dict[int, list[float]] = {}
    dists, cosines = [], []
    for i in range(h * w):
        for j in range(i + 1, h * w):
            d = np.hypot(i // w - j // w, i % w - j % w)
            groups.setdefault(int(np.rint(d)), []).append(float(unit[i] @ unit[j]))
            dists.append(d)
            cosines.append(float(unit[i] @ unit[j]))
    # max_minus_min: the largest fall c(near bin) - c(farther bin) among bins holding >= 1% of the pairs
    total = sum(len(v) for v in groups.values())
    curve = [np.mean(groups[d]) for d in sorted(groups) if len(groups[d]) >= 0.01 * total]
    drop = max(curve[i] - curve[j] for i in range(len(curve)) for j in range(i + 1, len(curve)))
    assert smoothness(profiles, (h, w), method="max_minus_min").value == pytest.approx(drop, rel=1e-9)
    # tdann: TDANN's statistic of 1 - cos in 20 equal-width half-open distance bins
    dists, dissim = np.array(dists), 1.0 - np.array(cosines)
    edges = np.linspace(dists.min(), dists.max(), 21)
    means = [dissim[(dists >= lo) & (dists < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])]
    expected = (max(means) - means[0]) / max(means)
    result = smoothness(profiles, (h, w), method="tdann").value
    assert result == pytest.approx(expected, rel=1e-9) and 0.0 < result < 1.0
    assert smoothness(np.random.default_rng(0).permutation(profiles), (h, w), method="tdann").value < 0.05


def test_every_method_is_bounded_and_direction_aware() -> None:
    assert largest_outward_drop(np.array([-1.0, 0.0, 0.5])) == 0.0  # similarity rising with distance
    assert largest_outward_drop(np.array([0.9, 0.5, 0.2, 0.3])) == pytest.approx(0.7)
    h, w = 16, 16
    rows, cols = np.divmod(np.arange(h * w), w)
    checker = np.where(((rows + cols) % 2)[:, None] == 0, 1.0, -1.0) * np.ones((1, 3))
    bounds = {"near_minus_far": (-2.0, 2.0), "max_minus_min": (0.0, 2.0), "tdann": (0.0, 1.0)}
    rng = np.random.default_rng(1)
    for vectors in (checker, rng.normal(size=(h * w, 5)), smooth_sheet(h, w)):
        for method, (lo, hi) in bounds.items():
            assert lo <= smoothness(vectors, (h, w), method=method).value <= hi, method
    # units that agree with distant units more than with neighbours score below the null
    assert smoothness(checker, (h, w)).value < 0.0


def test_response_profiles_turn_cosine_into_pearson() -> None:
    rng = np.random.default_rng(5)
    responses = rng.gamma(2.0, size=(30, 12))
    profiles = response_profiles(torch.tensor(responses))
    curve = similarity_by_distance(profiles, (3, 4))
    corr = np.corrcoef(responses.T)
    assert curve.similarity[0] == pytest.approx(np.mean([corr[i, j] for i in range(12) for j in range(i + 1, 12)
                                                         if np.hypot(i // 4 - j // 4, i % 4 - j % 4) < 1.5]))


def test_conv_weights_are_flattened_and_zero_units_have_zero_similarity() -> None:
    weight = np.random.default_rng(0).normal(size=(12, 3, 3, 3))
    flat = similarity_by_distance(weight.reshape(12, -1), (3, 4))
    np.testing.assert_allclose(similarity_by_distance(weight, (3, 4)).similarity, flat.similarity)
    assert np.all(similarity_by_distance(np.zeros((12, 4)), (3, 4)).similarity == 0.0)


def test_smoothness_input_checks() -> None:
    with pytest.raises(ValueError, match=r"method='slope'.*near_minus_far, max_minus_min, tdann"):
        smoothness(np.ones((4, 2)), (2, 2), method="slope")
    with pytest.raises(ValueError, match="n_units = H·W = 6"):
        similarity_by_distance(np.ones((4, 2)), (2, 3))
    with pytest.raises(ValueError, match="max_pairs"):
        similarity_by_distance(np.ones((4, 2)), (2, 2), max_pairs=0)
