"""Scalar maps drawn at the units' positions in mm: a PNG with one rasterized scatter panel per map and one colour
bar, a diverging range symmetric at ±limit or a cyclic one for orientations."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from test_brain_plots import assert_png

from toponets_exp.brain.position_plots import plot_position_maps, position_maps_figure
from toponets_exp.brain import plot_position_maps as exported


def layer(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n positions over a 70 × 35 mm sheet and a smooth t map on them."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0, 1, (n, 2)) * (70.0, 35.0)
    return positions, 8 * np.sin(positions[:, 0] / 9) * np.cos(positions[:, 1] / 7) + rng.normal(size=n)


def scatters(fig):
    return [c for ax in fig.axes for c in ax.collections if c.get_offsets().shape[0] > 1]


def test_t_maps_share_one_symmetric_range(tmp_path: Path) -> None:
    positions, t = layer(50_000)
    t[:10] = np.inf  # a unit without variance: drawn grey, not stretching the range
    maps = [("faces", t), ("bodies", -0.5 * t), ("places", 0.25 * t)]
    path = plot_position_maps(maps, positions, tmp_path / "deep" / "maps.png", "layer4, fLoc t")
    assert exported is plot_position_maps and path == tmp_path / "deep" / "maps.png"
    assert_png(path)
    height, width = mpimg.imread(path).shape[:2]
    assert width > 2 * height  # three panels side by side
    fig = position_maps_figure(maps, positions, "layer4, fLoc t")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(fig.axes) == 4 and len(panels) == 3  # three maps and the colour bar
    peak = float(np.abs(t[np.isfinite(t)]).max())
    for ax, (name, values), points in zip(panels, maps, scatters(fig)):
        assert ax.get_title() == name and ax.get_xlabel() == "x (mm)" and ax.get_ylabel() == "y (mm)"
        assert ax.get_aspect() == 1.0
        assert points.get_rasterized() and points.get_offsets().shape == (50_000, 2)
        assert points.get_clim() == (-peak, peak)
        assert points.get_cmap().name.startswith("RdBu_r")
        assert points.get_cmap().get_bad() == pytest.approx(to_rgba("0.8"))
    assert f"±{peak:.3g}" in fig.axes[3].get_ylabel()
    limited = position_maps_figure(maps[:1], positions, "t", limit=5.0)
    assert scatters(limited)[0].get_clim() == (-5.0, 5.0)


def test_orientation_maps_are_cyclic(tmp_path: Path) -> None:
    positions, t = layer(2_000, seed=1)
    maps = [(f"layer{k}", np.mod(30 * t + 45 * k, 180) + 180 * (k % 2)) for k in range(5)]
    fig = position_maps_figure(maps, positions, "orientation", cyclic=True)
    points = scatters(fig)
    assert len(points) == 5 and len([ax for ax in fig.axes if ax.axison]) == 6  # two rows of 4, 3 unused, a bar
    for p, (_, values) in zip(points, maps):
        assert p.get_clim() == (0.0, 180.0) and p.get_cmap().name.startswith("twilight")
        np.testing.assert_allclose(np.asarray(p.get_array()), np.mod(values, 180))
    assert "cyclic" in fig.axes[-1].get_ylabel()
    assert_png(plot_position_maps(maps, positions, tmp_path / "ori.png", "orientation", cyclic=True))


def test_bad_input(tmp_path: Path) -> None:
    positions, t = layer(100)
    with pytest.raises(ValueError, match="positions must be"):
        plot_position_maps([("t", t)], positions[:, 0], tmp_path / "a.png", "t")
    with pytest.raises(ValueError, match="positions contain"):
        plot_position_maps([("t", t)], np.where(positions > 60, np.nan, positions), tmp_path / "a.png", "t")
    with pytest.raises(ValueError, match="one value per unit"):
        plot_position_maps([("t", t[:-1])], positions, tmp_path / "a.png", "t")
    with pytest.raises(ValueError, match="at least one"):
        plot_position_maps([], positions, tmp_path / "a.png", "t")
    for limit in (0.0, -1.0, np.inf):
        with pytest.raises(ValueError, match="limit"):
            plot_position_maps([("t", t)], positions, tmp_path / "a.png", "t", limit=limit)
    assert not (tmp_path / "a.png").exists()
