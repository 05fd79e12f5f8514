"""Every plot writes a real PNG of sensible size, with parent folders created."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgba
from matplotlib.contour import ContourSet

from toponets_exp.brain import (plot_bar, plot_curves, plot_selectivity_maps, plot_sheet_map, plot_similarity_curves,
                                plot_weight_sheet, selectivity_map, similarity_by_distance)
from toponets_exp.brain.orientation_plot import orientation_figure
from toponets_exp.brain.plots import curves_figure, downsampling_figure, sheet_map_figure
from toponets_exp.brain.selectivity import SelectivityMap
from toponets_exp.brain.sheet_plots import selectivity_figure, shared_t_limit, weight_sheet_figure
from toponets_exp.brain.similarity_plot import similarity_figure
from toponets_exp.topo.sheet_pca import FULL_SATURATION_SHARE, sheet_principal_components, sheet_rgb

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


def test_sheet_rgb_scales_each_pcs_distance_from_grey_by_its_variance_share() -> None:
    scores = np.random.default_rng(4).normal(size=(8, 8, 3))
    rgb = sheet_rgb(scores, np.array([2 * FULL_SATURATION_SHARE, FULL_SATURATION_SHARE / 4, 0.0]))
    reach = np.abs(rgb - 0.5).max(axis=(0, 1))  # per channel, the largest distance from mid-grey
    assert reach == pytest.approx([0.5, 0.125, 0.0])  # full at >= FULL_SATURATION_SHARE, else in proportion


def test_weight_sheet_rgb_of_weak_pcs_stays_near_grey() -> None:
    noise = np.random.default_rng(3).normal(size=(256, 400))  # no dominant direction: each PC explains ~1 %
    _, shares = sheet_principal_components(noise, (16, 16))
    fig = weight_sheet_figure(noise, (16, 16), "noise")
    rgb = np.asarray(fig.axes[0].get_images()[0].get_array())
    reach = np.abs(rgb - 0.5).max(axis=(0, 1))
    assert np.all(reach <= 0.5 * shares / FULL_SATURATION_SHARE + 1e-9) and reach.max() < 0.1
    assert f"saturation ∝ variance explained (full at ≥ {100 * FULL_SATURATION_SHARE:.0f}%)" in fig.axes[0].get_title()
    smooth = weight_sheet_figure(smooth_weights(16, 32), (16, 32), "smooth")  # PCs 1-3 explain 17, 14, 12 %
    reach = np.abs(np.asarray(smooth.axes[0].get_images()[0].get_array()) - 0.5).max(axis=(0, 1))
    assert reach == pytest.approx([0.5, 0.5, 0.5])


def test_plot_similarity_curves(tmp_path: Path) -> None:
    curves = {"tau=0": similarity_by_distance(np.random.default_rng(0).normal(size=(192, 9)), (12, 16)),
              "tau=10": similarity_by_distance(smooth_weights(12, 16), (12, 16))}
    assert_png(plot_similarity_curves({"weights": curves}, tmp_path / "curves.png"))


def test_plot_selectivity_maps(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(["face", "body", "scene", "object", "word"], 20)
    responses = rng.normal(size=(100, 192))
    responses[:20, 40:70] += 2.0
    maps = [selectivity_map(responses, labels, c, (12, 16)) for c in ("face", "body", "scene", "object", "word")]
    assert_png(plot_selectivity_maps(maps, tmp_path / "sel.png", "Category selectivity, layer4", "fLoc, 100 images",
                                     shared_t_limit(maps)))
    with pytest.raises(ValueError, match="at least one"):
        plot_selectivity_maps([], tmp_path / "none.png", "empty", "none", 1.0)


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


def luminance(rgba: tuple[float, ...]) -> float:
    """Relative luminance of an sRGB colour (Rec. 709 weights, no gamma: enough to order a sequential map)."""
    return 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]


def test_similarity_figure_names_every_layer_and_shows_the_spread_across_layers() -> None:
    rng = np.random.default_rng(2)
    names = [f"layer{i}.conv" for i in range(16)]
    weights = {n: similarity_by_distance(smooth_weights(8, 8), (8, 8)) for n in names}
    responses = {n: similarity_by_distance(rng.normal(size=(64, 5)), (8, 8)) for n in names}
    fig = similarity_figure({"weights": weights, "response profiles": responses}, "c(d)")
    assert len(fig.axes) == 10  # 2 kinds × (4 groups of 4 layers + the across-layer summary)
    assert "distance on the sheet" in fig.get_supxlabel()
    for row, (kind, curves) in enumerate({"weights": weights, "response profiles": responses}.items()):
        *groups, summary = fig.axes[5 * row:5 * row + 5]
        assert groups[0].get_ylabel() == f"{kind}\nmean cosine similarity"
        assert [ax.get_title() for ax in groups] == [f"{kind}: layers {i}–{i + 3} of 16" for i in (1, 5, 9, 13)]
        named = [t.get_text() for ax in groups for t in ax.get_legend().get_texts()]
        assert named == names  # every layer named once, in depth order
        for ax in groups:
            lines = [line for line in ax.get_lines() if line.get_label() in names]
            shades = [luminance(to_rgba(line.get_color())) for line in lines]
            assert len(lines) == 4 and all(a < b for a, b in zip(shades, shades[1:]))  # darker = earlier
            assert len({line.get_marker() for line in lines}) == 4
        assert summary.get_title() == f"{kind}: all 16 layers"
        (band,) = [c for c in summary.collections if c.get_label() == "min–max over the layers reaching d"]
        (mean,) = [ln for ln in summary.get_lines() if ln.get_label() == "mean over the layers reaching d"]
        at_one = [float(c.similarity[c.distances == 1.0][0]) for c in curves.values()]
        assert mean.get_ydata()[list(mean.get_xdata()).index(1.0)] == pytest.approx(np.mean(at_one))
        edge = band.get_paths()[0].vertices
        assert {round(y, 12) for y in edge[edge[:, 0] == 1.0][:, 1]} >= {round(min(at_one), 12),
                                                                        round(max(at_one), 12)}
    few = similarity_figure({"weights": dict(list(weights.items())[:3])}, "c(d)")
    assert len(few.axes) == 1 and [t.get_text() for t in few.axes[0].get_legend().get_texts()] == names[:3]
    assert few.axes[0].get_title() == "weights"


def test_selectivity_figure_says_what_the_categories_threshold_range_and_stimuli_are() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(["0", "1", "2"], 20)
    responses = rng.normal(size=(60, 64))
    responses[:20, 10:30] += 3.0
    maps = [selectivity_map(responses, labels, c, (8, 8), threshold=3.5) for c in ("0", "1", "2")]
    meaning = {"0": "class 0 (digit 0)", "1": "class 1 (digit 1)", "2": "class 2 (digit 2)"}
    lim = max(float(np.abs(m.t).max()) for m in maps)
    assert shared_t_limit(maps) == lim
    fig = selectivity_figure(maps, "layer4", "the test split, 60 images of 3 categories", 2 * lim, meaning)
    panels = fig.axes[:3]
    assert [ax.get_title().split("\n")[0] for ax in panels] == list(meaning.values())
    assert "black outline: cells with t > 3.5" in fig.get_suptitle()
    assert "60 images of 3 categories" in fig.get_suptitle()
    assert all(ax.get_images()[0].get_clim() == (-2 * lim, 2 * lim) for ax in panels)  # the range it is given
    label = fig.axes[3].get_ylabel()
    assert f"±{2 * lim:.1f}" in label and "every panel" in label and "every layer" in label


def test_curves_figure_draws_the_chance_line() -> None:
    fig = curves_figure([0.0, 0.5, 0.9], {"accuracy": [0.9, 0.8, 0.3]}, "pruning", "sparsity", "accuracy",
                        (0.1, "1/10 classes"))
    (chance,) = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("chance")]
    assert chance.get_label() == "chance (1/10 classes)" and list(chance.get_ydata()) == [0.1, 0.1]
    plain = curves_figure([0.0, 0.5], {"accuracy": [0.9, 0.8]}, "pruning", "sparsity", "accuracy")
    assert [line.get_label() for line in plain.axes[0].get_lines()] == ["accuracy"]


def test_downsampling_figure_marks_the_measured_factors_only() -> None:
    curve = [{"factor": 1, "kept_fraction": 1.0, "metric": 0.99}, {"factor": 2, "kept_fraction": 0.25, "metric": 0.16},
             {"factor": 4, "kept_fraction": 0.0625, "metric": 0.1}]
    fig = downsampling_figure(curve, "accuracy", "downsampling", "factor k", (0.1, "1/10 classes"))
    ax = fig.axes[0]
    (points,) = [line for line in ax.get_lines() if line.get_label() == "accuracy (measured)"]
    assert points.get_linestyle() == "None" and points.get_marker() == "o"  # no segment across unmeasured factors
    assert list(points.get_xdata()) == [1, 2, 4] and list(points.get_ydata()) == [0.99, 0.16, 0.1]
    assert list(ax.get_xticks()) == [1, 2, 4] and list(ax.get_xticks(minor=True)) == []
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1\n(100% kept)", "2\n(25% kept)", "4\n(6.25% kept)"]
    assert [t.get_text() for t in ax.texts] == ["0.99", "0.16", "0.1"]  # each measured value written at its marker
    (chance,) = [line for line in ax.get_lines() if line.get_label().startswith("chance")]
    assert list(chance.get_ydata()) == [0.1, 0.1]


def test_sheet_map_figure_marks_values_past_vmax_and_missing_units() -> None:
    values = np.array([[7.5, 9.0], [70_000.0, np.nan]])  # every value past the scale: it still starts at 0
    fig = sheet_map_figure(values, "window", label="window (words)", vmax=6, over="red")
    image = fig.axes[0].get_images()[0]
    assert image.get_clim() == (0.0, 6)
    assert image.get_cmap().get_over() == pytest.approx(to_rgba("red"))
    assert image.get_cmap().get_bad() == pytest.approx(to_rgba("0.8"))
    assert fig.axes[1].get_ylabel() == "window (words)"
    assert fig.axes[1].collections or fig.axes[1].patches  # the 'extend' arrow of the colour bar


def test_orientation_figure_fades_units_that_are_not_orientation_selective() -> None:
    theta = np.array([[0.0, 45.0, 90.0], [135.0, 45.0, np.nan]])
    selective = np.array([[True, False, True], [True, True, False]])
    fig = orientation_figure({"layer1": theta}, {"layer1": selective}, {"layer1": "67% selective"}, "orientation",
                             {"layer1": [(0.5, 0.5)]})
    ax = fig.axes[0]
    rgb = np.asarray(ax.get_images()[0].get_array())
    hues = colormaps["hsv"]
    for r, c in [(0, 0), (0, 2), (1, 0), (1, 1)]:  # selective units: the full colour of their preference
        assert rgb[r, c] == pytest.approx(hues(theta[r, c] / 180.0)[:3])
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert saturation[0, 1] < 0.35 * saturation[1, 1]  # the same preference (45°), not selective: faded
    assert np.argmax(rgb[0, 1]) == np.argmax(rgb[1, 1])  # ... toward grey, keeping its hue
    assert np.all(rgb[1, 2] == 0.0)  # no preferred orientation: black
    key = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("selective" in t and "circular variance < 0.6" in t and "full colour" in t for t in key)
    assert any(t.startswith("not selective") and "faded" in t for t in key)
    assert any("no preferred orientation" in t and "black" in t for t in key)
    assert any("pinwheel" in t for t in key)
    assert "selective units" in fig.axes[-1].get_ylabel()  # the colour bar says which units carry full colour


def test_selectivity_outline_follows_cell_edges_and_sheet_ticks_are_whole_units() -> None:
    t = np.zeros((2, 5))
    t[0, 1:3] = 6.0  # a 1×2 block of selective cells
    t[1, 4] = 5.0    # one selective cell in the sheet's corner
    fig = selectivity_figure([SelectivityMap("face", t, t, 0.3, 4.0, 0.0, 0.0)], "layer", "stimuli", 8.0)
    ax = fig.axes[0]
    assert not any(isinstance(c, ContourSet) for c in ax.collections)  # no contour interpolated through centres
    (outline,) = [c for c in ax.collections if c.get_label() == "selective cells' outline"]
    edges = {frozenset(map(tuple, np.asarray(s).tolist())) for s in outline.get_segments()}
    h = lambda x0, x1, y: frozenset({(x0, y), (x1, y)})  # noqa: E731  horizontal cell edge
    v = lambda x, y0, y1: frozenset({(x, y0), (x, y1)})  # noqa: E731  vertical cell edge
    assert edges == {h(0.5, 1.5, -0.5), h(1.5, 2.5, -0.5), h(0.5, 1.5, 0.5), h(1.5, 2.5, 0.5),
                     v(0.5, -0.5, 0.5), v(2.5, -0.5, 0.5),
                     h(3.5, 4.5, 0.5), h(3.5, 4.5, 1.5), v(3.5, 0.5, 1.5), v(4.5, 0.5, 1.5)}
    assert len(outline.get_segments()) == 10  # each edge once
    fig.draw_without_rendering()
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, sorted(ax.get_ylim()))):
        shown = [tick for tick in axis.get_majorticklocs() if lo <= tick <= hi]
        assert shown and all(float(tick).is_integer() for tick in shown)
        assert all(label.get_text().lstrip("−-").isdigit() for label in axis.get_majorticklabels()
                   if label.get_text())
