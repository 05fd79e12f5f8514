"""Moran's I, map SSIM / Pearson and category-selectivity maps against brute force, skimage and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage, stats as sps
from skimage.metrics import structural_similarity

from toponets_exp.brain import map_pearson, map_ssim, morans_i, selectivity_map, welch_t


def brute_morans_i(x: np.ndarray) -> float:
    """Moran's I by an explicit double loop over cells with rook neighbours."""
    h, w = x.shape
    z = x - x.mean()
    num, links = 0.0, 0
    for r in range(h):
        for c in range(w):
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                if 0 <= r + dr < h and 0 <= c + dc < w:
                    num += z[r, c] * z[r + dr, c + dc]
                    links += 1
    return x.size / links * num / np.sum(z * z)


def test_morans_i_extremes() -> None:
    checker = np.indices((8, 10)).sum(axis=0) % 2
    assert morans_i(checker) == pytest.approx(-1.0, abs=1e-12)
    ramp = np.add.outer(np.arange(40.0), np.arange(40.0))
    assert 0.95 < morans_i(ramp) < 1.0
    noise = np.random.default_rng(0).normal(size=(60, 60))
    assert abs(morans_i(noise)) < 0.05
    assert np.isnan(morans_i(np.ones((3, 3))))


@pytest.mark.parametrize("shape", [(1, 9), (5, 5), (7, 13)])
def test_morans_i_matches_brute_force(shape: tuple[int, int]) -> None:
    x = ndimage.gaussian_filter(np.random.default_rng(1).normal(size=shape), 1.0)
    assert morans_i(torch.tensor(x)) == pytest.approx(brute_morans_i(x), rel=1e-10)


def lat2w_row_standardised(h: int, w: int, queen: bool) -> np.ndarray:
    """The dense (H·W)² weights of libpysal's `lat2W(h, w, rook=not queen)` (ids row-major, binary links, no wrap)
    after esda's default row standardisation ('r': each row divided by its sum)."""
    n = h * w
    weights = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            dr, dc = abs(i // w - j // w), abs(i % w - j % w)
            if i != j and max(dr, dc) == 1 and (queen or dr + dc == 1):
                weights[i, j] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


def esda_moran(x: np.ndarray, weights: np.ndarray) -> float:
    """esda's Moran.I: n / S0 · Σ z_i (W z)_i / Σ z_i², z the deviations from the mean of the flattened map."""
    z = x.ravel() - x.mean()
    return x.size / weights.sum() * float(z @ weights @ z) / float(z @ z)


@pytest.mark.parametrize("shape", [(6, 6), (5, 7), (7, 5), (1, 6), (2, 9)])
@pytest.mark.parametrize("queen", [True, False])
def test_row_standardised_morans_i_equals_topolm_esda_derivation(shape: tuple[int, int], queen: bool) -> None:
    """TopoLM's Moran's I (esda.Moran on lat2W(h, w, rook=False)) on smooth and random maps, and rook likewise."""
    rng = np.random.default_rng(3)
    weights = lat2w_row_standardised(*shape, queen)
    for x in (ndimage.gaussian_filter(rng.normal(size=shape), 1.0), rng.normal(size=shape)):
        ours = morans_i(x, neighbours="queen" if queen else "rook", weights="row")
        assert ours == pytest.approx(esda_moran(x, weights), rel=1e-12, abs=1e-14)


def test_queen_binary_morans_i_and_known_answers() -> None:
    """Binary queen weights against the same dense derivation unstandardised; a ramp and row stripes differ between
    the neighbourhoods as they must (diagonal neighbours of a row stripe disagree; a rook checkerboard's agree)."""
    x = np.random.default_rng(4).normal(size=(6, 8))
    dense = lat2w_row_standardised(6, 8, queen=True) > 0
    assert morans_i(x, neighbours="queen") == pytest.approx(esda_moran(x, dense.astype(float)), rel=1e-12)
    stripes = np.tile(np.arange(8) % 2, (6, 1)).astype(float)
    assert morans_i(stripes) == pytest.approx(esda_moran(stripes, lat2w_row_standardised(6, 8, False) > 0))
    assert morans_i(stripes, neighbours="queen", weights="row") < morans_i(stripes) < 0
    checker = np.indices((8, 8)).sum(axis=0) % 2
    assert morans_i(checker, neighbours="rook", weights="row") == pytest.approx(-1.0)
    assert morans_i(checker, neighbours="queen", weights="binary") > -1.0
    with pytest.raises(ValueError, match="neighbours='bishop'"):
        morans_i(x, neighbours="bishop")
    with pytest.raises(ValueError, match="weights='kernel'"):
        morans_i(x, weights="kernel")


def test_map_checks() -> None:
    with pytest.raises(ValueError, match="2-D"):
        morans_i(np.ones(5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        morans_i(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="same shape"):
        map_ssim(np.ones((8, 8)), np.ones((8, 9)))
    with pytest.raises(ValueError, match="3×3"):
        map_ssim(np.ones((2, 8)), np.zeros((2, 8)))


@pytest.mark.parametrize("shape", [(8, 8), (16, 32), (5, 6), (3, 3)])
def test_map_ssim_matches_skimage(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    a = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    b = a + 0.3 * rng.normal(size=shape)
    data_range = max(a.max(), b.max()) - min(a.min(), b.min())
    win = min(7, *shape) - (1 - min(7, *shape) % 2)
    expected = structural_similarity(a, b, data_range=data_range, win_size=win)
    assert map_ssim(a, b) == pytest.approx(expected, rel=1e-10)


def test_map_ssim_orders_similarity() -> None:
    rng = np.random.default_rng(3)
    a = ndimage.gaussian_filter(rng.normal(size=(24, 24)), 2.0)
    assert map_ssim(a, a) == pytest.approx(1.0)
    noisy = a + 0.1 * a.std() * rng.normal(size=a.shape)
    scrambled = rng.permutation(a.ravel()).reshape(a.shape)
    assert map_ssim(a, noisy) > 0.8 > 0.2 > map_ssim(a, scrambled)
    assert map_ssim(np.full((5, 5), 2.0), np.full((5, 5), 2.0)) == 1.0


def test_map_pearson_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(6, 7)), rng.normal(size=(6, 7))
    assert map_pearson(a, a + b) == pytest.approx(sps.pearsonr(a.ravel(), (a + b).ravel()).statistic, rel=1e-12)
    assert np.isnan(map_pearson(a, np.ones((6, 7))))


def planted_category_patch(h: int = 12, w: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responses (n_stimuli, h·w) where a 4×5 patch of units prefers category 'face'; labels; patch mask."""
    rng = np.random.default_rng(seed)
    labels = np.array(["face"] * 30 + ["body"] * 25 + ["scene"] * 35)
    responses = rng.normal(size=(labels.size, h * w))
    patch = np.zeros((h, w), dtype=bool)
    patch[3:7, 8:13] = True
    responses[np.ix_(labels == "face", patch.ravel())] += 3.0
    return responses, labels, patch


def test_selectivity_map_finds_the_planted_patch() -> None:
    responses, labels, patch = planted_category_patch()
    sel = selectivity_map(torch.tensor(responses), labels, "face", (12, 16))
    assert sel.category == "face" and sel.t.shape == sel.d_prime.shape == (12, 16)
    face = labels == "face"
    np.testing.assert_allclose(sel.t.ravel(), welch_t(responses[face], responses[~face]), rtol=1e-12)
    np.testing.assert_array_equal(sel.t > sel.threshold, patch)
    assert sel.fraction_selective == pytest.approx(patch.mean())
    assert sel.d_prime[patch].min() > 2.0 and np.abs(sel.d_prime[~patch]).max() < 1.0
    assert sel.morans_i == pytest.approx(morans_i(sel.t)) and sel.morans_i > 0.5
    assert selectivity_map(responses, labels, "scene", (12, 16)).fraction_selective < 0.02


def test_selectivity_map_checks() -> None:
    responses, labels, _ = planted_category_patch()
    with pytest.raises(ValueError, match="category='car' is not among the labels"):
        selectivity_map(responses, labels, "car", (12, 16))
    with pytest.raises(ValueError, match="n_units = H·W = 100"):
        selectivity_map(responses, labels, "face", (10, 10))
    with pytest.raises(ValueError, match="labels must have shape"):
        selectivity_map(responses, labels[:-1], "face", (12, 16))
