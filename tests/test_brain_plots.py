"""Every plot writes a real PNG of sensible size, with parent folders created."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from toponets_exp.brain import (plot_bar, plot_curves, plot_selectivity_maps, plot_sheet_map, plot_similarity_curves,
                                plot_weight_sheet, selectivity_map, similarity_by_distance)
from toponets_exp.brain.plots import sheet_principal_components

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def smooth_weights(h: int, w: int, dim: int = 27) -> np.ndarray:
    """(h·w, dim) weight vectors varying smoothly over the sheet."""
    rng = np.random.default_rng(0)
    rows, cols = np.divmod(np.arange(h * w), w)
    return np.cos(np.stack([rows, cols], axis=1) @ rng.normal(scale=0.3, size=(2, dim)) + rng.uniform(0, 6, dim))


def assert_png(path: Path, min_pixels: int = 200) -> None:
    """The file is a decodable PNG at least min_pixels on each side."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = mpimg.imread(path)
    assert image.shape[0] >= min_pixels and image.shape[1] >= min_pixels
    assert image[..., :3].std() > 0.01  # not a blank canvas


def test_plot_weight_sheet(tmp_path: Path) -> None:
    weights = smooth_weights(16, 32).reshape(512, 3, 3, 3)
    assert_png(plot_weight_sheet(weights, (16, 32), tmp_path / "deep" / "sheet.png", "layer4.1.conv2"))


def test_sheet_principal_components_capture_the_smooth_axes() -> None:
    scores, shares = sheet_principal_components(smooth_weights(16, 32), (16, 32))
    assert scores.shape == (16, 32, 3) and np.all(np.diff(shares) <= 0) and shares.sum() <= 1.0
    low_dim = sheet_principal_components(np.eye(4)[:, :2], (2, 2))[0]
    assert np.all(low_dim[..., 2] == 0.0)  # fewer components than requested are zero-padded


def test_plot_similarity_curves(tmp_path: Path) -> None:
    curves = {"tau=0": similarity_by_distance(np.random.default_rng(0).normal(size=(192, 9)), (12, 16)),
              "tau=10": similarity_by_distance(smooth_weights(12, 16), (12, 16))}
    assert_png(plot_similarity_curves(curves, tmp_path / "curves.png"))


def test_plot_selectivity_maps(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(["face", "body", "scene", "object", "word"], 20)
    responses = rng.normal(size=(100, 192))
    responses[:20, 40:70] += 2.0
    maps = [selectivity_map(responses, labels, c, (12, 16)) for c in ("face", "body", "scene", "object", "word")]
    assert_png(plot_selectivity_maps(maps, tmp_path / "sel.png", "Category selectivity, layer4"))
    with pytest.raises(ValueError, match="at least one"):
        plot_selectivity_maps([], tmp_path / "none.png", "empty")


def test_plot_bar_curves_and_sheet_map(tmp_path: Path) -> None:
    assert_png(plot_bar({"layer1": 12.3, "layer2": 30.1, "layer3": 44.0, "layer4": 21.7}, tmp_path / "ed.png",
                        "Effective dimensionality", "ED"))
    fractions = [0.0, 0.2, 0.4, 0.6, 0.8]
    assert_png(plot_curves(fractions, {"tau=0": [0.9, 0.88, 0.8, 0.6, 0.3], "tau=50": [0.89, 0.88, 0.86, 0.8, 0.6]},
                           tmp_path / "prune.png", "Pruning c_fc", "fraction pruned", "accuracy"))
    values = np.add.outer(np.arange(24.0), np.sin(np.arange(48) / 5))
    assert_png(plot_sheet_map(values, tmp_path / "map.png", "Language selectivity (t)", cmap="magma"))
    with pytest.raises(ValueError, match="2-D map"):
        plot_sheet_map(np.ones(4), tmp_path / "bad.png", "bad")
