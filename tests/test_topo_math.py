"""TopoLoss math against an independent NumPy derivation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reference_topo import np_blur, np_layer_loss, np_sheet_shape
from toponets_exp.topo import blur_matrix, layer_loss, sheet_shape


@pytest.mark.parametrize("n", [1, 2, 7, 12, 13, 64, 97, 128, 250, 256, 512, 768, 1000, 2048, 3072])
def test_sheet_shape_matches_brute_force(n):
    assert sheet_shape(n) == np_sheet_shape(n)


def test_sheet_shape_known_values():
    assert sheet_shape(64) == (8, 8)
    assert sheet_shape(512) == (16, 32)
    assert sheet_shape(3072) == (48, 64)
    assert sheet_shape(13) == (1, 13)  # prime: a 1 x N strip


CASES = [
    ((64, 16, 3, 3), 3.0, 3.0),  # conv, square sheet
    ((128, 8, 3, 3), 2.0, 3.0),  # conv, 8 x 16 sheet, different factors per axis
    ((96, 20), 3.0, 3.0),  # linear, 8 x 12
    ((120, 7), 3.0, 2.5),  # 10 x 12: H/φ and W/φ are not integers
    ((150, 5), 2.7, 3.7),  # 10 x 15, non-integer factors
    ((13, 6), 1.0, 2.5),  # prime: 1 x 13
    ((1, 4), 1.0, 1.0),  # a single unit
]


@pytest.mark.parametrize("shape,fh,fw", CASES)
def test_layer_loss_matches_numpy_float64(shape, fh, fw):
    w = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert layer_loss(w, fh, fw).item() == pytest.approx(np_layer_loss(w.numpy(), fh, fw), abs=1e-12)


@pytest.mark.parametrize("shape,fh,fw", CASES)
def test_layer_loss_matches_numpy_float32(shape, fh, fw):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    assert layer_loss(w, fh, fw).item() == pytest.approx(np_layer_loss(w.double().numpy(), fh, fw), abs=2e-6)


@pytest.mark.parametrize("side,factor", [(8, 3.0), (10, 3.0), (12, 2.5), (16, 1.0), (13, 13.0), (5, 4.9)])
def test_blur_matrix_is_the_interpolation_operator(side, factor):
    eye = np.eye(side)
    ref = np.stack([np_blur(eye[:, j].reshape(side, 1), factor, 1.0)[:, 0] for j in range(side)], axis=1)
    np.testing.assert_allclose(blur_matrix(side, factor, torch.float64).numpy(), ref, atol=1e-12)


def test_scale_factor_grid_differs_from_size_grid():
    """The sampling grid comes from the scale factor, not from a size computed from it (10/3 is not an integer)."""
    w = torch.randn(100, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))  # 10 x 10
    sheet = w.reshape(10, 10, 9).permute(2, 0, 1).unsqueeze(0)
    down = F.interpolate(sheet, size=(3, 3), mode="bilinear")
    up = F.interpolate(down, size=(10, 10), mode="bilinear")[0].permute(1, 2, 0).reshape(100, 9)
    size_grid_loss = 1 - F.cosine_similarity(w, up, dim=-1).mean()
    assert abs(layer_loss(w, 3.0, 3.0).item() - size_grid_loss.item()) > 1e-4


def test_layer_loss_gradcheck_float64():
    for shape, fh, fw in [((16, 3, 3, 3), 2.0, 2.0), ((24, 5), 1.5, 2.5), ((7, 4), 1.0, 3.0)]:
        w = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x: layer_loss(x, fh, fw), (w,))


def test_layer_loss_dtypes():
    w = torch.randn(256, 64, generator=torch.Generator().manual_seed(3))
    ref = layer_loss(w.double(), 3.0, 3.0).item()
    assert layer_loss(w, 3.0, 3.0).dtype == torch.float32
    assert layer_loss(w, 3.0, 3.0).item() == pytest.approx(ref, abs=1e-6)
    bf16 = layer_loss(w.bfloat16(), 3.0, 3.0)
    assert bf16.dtype == torch.bfloat16
    assert bf16.item() == pytest.approx(ref, abs=2e-2)  # bf16 has ~3 significant digits


@pytest.mark.parametrize("fh,fw", [(0.5, 2.0), (9.0, 2.0), (2.0, 8.5)])
def test_bad_factors_raise(fh, fw):
    with pytest.raises(ValueError, match="factor"):
        layer_loss(torch.randn(64, 3), fh, fw)  # 8 x 8 sheet


def test_factor_one_is_identity():
    assert layer_loss(torch.randn(64, 3), 1.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_smooth_sheet_has_lower_loss_than_shuffled():
    rows, cols = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    smooth = torch.stack([torch.sin(3 * rows), torch.cos(3 * cols), rows * cols, rows - cols], -1).reshape(256, 4)
    shuffled = smooth[torch.randperm(256, generator=torch.Generator().manual_seed(0))]
    assert layer_loss(smooth, 3.0, 3.0) < 0.2 * layer_loss(shuffled, 3.0, 3.0)


def test_optimising_only_topoloss_lowers_it():
    w = torch.randn(128, 32, 3, 3, generator=torch.Generator().manual_seed(4)).requires_grad_()
    opt = torch.optim.Adam([w], lr=0.05)
    start = layer_loss(w, 3.0, 3.0).item()
    for _ in range(100):
        opt.zero_grad()
        layer_loss(w, 3.0, 3.0).backward()
        opt.step()
    assert layer_loss(w, 3.0, 3.0).item() < 0.5 * start
