"""TDANN's spatial correlation loss: against a NumPy/SciPy derivation, gradients, the sampler, shapes, errors."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from toponets_exp.errors import ConfigError
from toponets_exp.topo.sheet import sheet_shape
from toponets_exp.topo.spatial_correlation import sample_neighbourhoods, spatial_correlation_loss, unit_responses


def np_loss(responses: np.ndarray, sheet: tuple[int, int], neighbourhoods: np.ndarray) -> float:
    """Mean over neighbourhoods of (1 − pearsonr(r, 1/(d+1))) / 2 over the pairs i < j, by explicit loops."""
    _, w = sheet
    losses = []
    for nb in neighbourhoods:
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant unit's row is NaN, set to 0 below
            corr = np.corrcoef(responses[:, nb].T)
        flat = responses[:, nb].max(axis=0) == responses[:, nb].min(axis=0)
        corr[flat, :] = 0.0  # a constant unit correlates 0 with every unit
        corr[:, flat] = 0.0
        r, similarity = [], []
        for a in range(len(nb)):
            for b in range(a + 1, len(nb)):
                r.append(corr[a, b])
                d = math.sqrt((nb[a] // w - nb[b] // w) ** 2 + (nb[a] % w - nb[b] % w) ** 2)
                similarity.append(1.0 / (d + 1.0))
        rho = 0.0 if np.ptp(r) == 0 else pearsonr(r, similarity)[0]
        losses.append((1.0 - rho) / 2.0)
    return float(np.mean(losses))


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Seeded standard-normal tensor."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# (sheet, neighbourhoods): the first two take the full-correlation path (units² <= count·k²), the others gather
FIXED = [
    ((4, 4), [[0, 1, 2, 4, 5, 6, 8, 9, 10], [5, 6, 7, 9, 10, 11, 13, 14, 15],
              [0, 1, 4, 5, 2, 3, 6, 7, 8], [15, 0, 10, 3, 12, 6, 9, 1, 2]]),
    ((3, 3), [[4, 0, 1, 2, 3, 5, 6, 7, 8]]),
    ((4, 4), [[0, 1, 2, 4, 5, 6, 8, 9, 10]]),
    ((3, 5), [[0, 1, 2], [4, 9, 14], [0, 6, 12]]),
    ((5, 7), [[0, 1, 2, 7, 8, 9, 14, 15, 16], [3, 11, 19, 27, 4, 12, 20, 28, 5]]),
]


@pytest.mark.parametrize("sheet,neighbourhoods", FIXED)
def test_loss_matches_numpy_float64(sheet, neighbourhoods):
    x = randn(40, sheet[0] * sheet[1])
    nb = torch.tensor(neighbourhoods)
    assert spatial_correlation_loss(x, sheet, nb).item() == pytest.approx(np_loss(x.numpy(), sheet, nb.numpy()),
                                                                          abs=1e-12)


@pytest.mark.parametrize("units,radius,count", [(512, 3, 20), (64, 3, 20), (96, 1.5, 5), (256, 2.7, 8)])
def test_sampled_loss_matches_numpy_float32(units, radius, count):
    sheet = sheet_shape(units)
    nb = sample_neighbourhoods(sheet, count, radius, torch.Generator().manual_seed(units))
    x = randn(64, units, seed=1, dtype=torch.float32)
    loss = spatial_correlation_loss(x, sheet, nb)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(np_loss(x.double().numpy(), sheet, nb.numpy()), abs=2e-6)


@pytest.mark.parametrize("dtype,computed", [(torch.bfloat16, torch.float32), (torch.float16, torch.float32),
                                            (torch.float64, torch.float64)])
def test_loss_dtype(dtype, computed):
    x = randn(32, 64, seed=2).to(dtype)
    nb = sample_neighbourhoods((8, 8), 4, 2, torch.Generator().manual_seed(0))
    loss = spatial_correlation_loss(x, (8, 8), nb)
    assert loss.dtype == computed
    assert loss.item() == pytest.approx(np_loss(x.double().numpy(), (8, 8), nb.numpy()), abs=1e-5)


@pytest.mark.parametrize("sheet,neighbourhoods", FIXED[:1] + FIXED[2:3])
def test_gradcheck_float64(sheet, neighbourhoods):
    x = randn(12, sheet[0] * sheet[1], seed=3).requires_grad_(True)
    nb = torch.tensor(neighbourhoods)
    assert torch.autograd.gradcheck(lambda t: spatial_correlation_loss(t, sheet, nb), (x,))


def test_constant_units_correlate_zero_with_finite_gradients():
    x = randn(30, 16, seed=4)
    x[:, 5] = 0.0  # a dead unit
    x[:, 6] = 0.1  # a constant nonzero unit, whose computed mean need not be exactly 0.1
    x.requires_grad_(True)
    for nb in (torch.tensor(FIXED[0][1]), torch.tensor(FIXED[2][1])):
        loss = spatial_correlation_loss(x, (4, 4), nb)
        loss.backward()
        assert loss.item() == pytest.approx(np_loss(x.detach().numpy(), (4, 4), nb.numpy()), abs=1e-12)
        assert torch.isfinite(x.grad).all()
        assert (x.grad[:, 5] == 0).all() and (x.grad[:, 6] == 0).all()
        x.grad = None


def test_all_constant_units_give_half():
    x = torch.ones(20, 16, requires_grad=True)
    loss = spatial_correlation_loss(x, (4, 4), torch.tensor(FIXED[0][1]))
    loss.backward()
    assert loss.item() == 0.5
    assert (x.grad == 0).all()


def smooth_responses(sheet: tuple[int, int], samples: int, seed: int) -> torch.Tensor:
    """Responses (samples, units): per sample, a random low-frequency wave over the sheet plus small noise."""
    g = torch.Generator().manual_seed(seed)
    h, w = sheet
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    angle = torch.rand(samples, 1, 1, generator=g, dtype=torch.float64) * 2 * math.pi
    phase = torch.rand(samples, 1, 1, generator=g, dtype=torch.float64) * 2 * math.pi
    wave = torch.cos(2 * math.pi / 12 * (rows * torch.sin(angle) + cols * torch.cos(angle)) + phase)
    return wave.reshape(samples, h * w) + 0.1 * torch.randn(samples, h * w, generator=g, dtype=torch.float64)


def test_smooth_map_scores_lower_than_shuffled():
    sheet = (16, 16)
    x = smooth_responses(sheet, 200, seed=5)
    shuffled = x[:, torch.randperm(256, generator=torch.Generator().manual_seed(6))]
    nb = sample_neighbourhoods(sheet, 20, 3, torch.Generator().manual_seed(7))
    smooth, random = spatial_correlation_loss(x, sheet, nb).item(), spatial_correlation_loss(shuffled, sheet, nb).item()
    assert smooth < 0.15
    assert abs(random - 0.5) < 0.1
    assert smooth < random - 0.3


@pytest.mark.parametrize("sheet,radius", [((8, 8), 1), ((8, 8), 3), ((16, 32), 2.5), ((5, 9), 2.0), ((3, 7), 1.99)])
def test_neighbourhoods_are_the_units_within_radius(sheet, radius):
    h, w = sheet
    nb = sample_neighbourhoods(sheet, 50, radius, torch.Generator().manual_seed(8))
    half = math.floor(radius)
    assert nb.shape == (50, (2 * half + 1) ** 2) and nb.dtype == torch.long
    for row in nb.tolist():
        centre = row[len(row) // 2]
        cr, cc = divmod(centre, w)
        assert half <= cr < h - half and half <= cc < w - half
        within = [u for u in range(h * w) if abs(u // w - cr) <= radius and abs(u % w - cc) <= radius]
        assert row == within  # row-major, all of them, none clipped by the sheet's edge


def test_neighbourhood_centres_cover_the_valid_units():
    nb = sample_neighbourhoods((6, 9), 3000, 2, torch.Generator().manual_seed(9))
    centres = set(nb[:, nb.shape[1] // 2].tolist())
    assert centres == {r * 9 + c for r in range(2, 4) for c in range(2, 7)}


def test_neighbourhoods_deterministic_and_resampled():
    a = torch.Generator().manual_seed(10)
    b = torch.Generator().manual_seed(10)
    first, again = sample_neighbourhoods((16, 32), 20, 3, a), sample_neighbourhoods((16, 32), 20, 3, b)
    assert torch.equal(first, again)
    assert not torch.equal(first, sample_neighbourhoods((16, 32), 20, 3, a))


def test_neighbourhoods_device():
    nb = sample_neighbourhoods((8, 8), 2, 1, torch.Generator().manual_seed(0), device="meta")
    assert nb.device.type == "meta"


@pytest.mark.parametrize("count", [0, -1, 2.0, True])
def test_sampler_rejects_count(count):
    with pytest.raises(ConfigError, match="count"):
        sample_neighbourhoods((8, 8), count, 2, torch.Generator())


@pytest.mark.parametrize("sheet,radius,match", [
    ((8, 8), 0.99, "fewer than 3 units"),
    ((8, 8), -2, "fewer than 3 units"),
    ((8, 8), 4, "9x9 window, larger than the 8x8 sheet; accepted: 1 <= radius < 4"),
    ((16, 32), 8, "larger than the 16x32 sheet"),
    ((1, 13), 1, "both sheet sides must be >= 3"),
    ((8, 8), float("nan"), "finite"),
])
def test_sampler_rejects_radius(sheet, radius, match):
    with pytest.raises(ConfigError, match=match):
        sample_neighbourhoods(sheet, 4, radius, torch.Generator())


def test_sampler_rejects_bad_sheet_and_generator():
    with pytest.raises(ValueError, match="sheet"):
        sample_neighbourhoods((8, 0), 4, 1, torch.Generator())
    with pytest.raises(TypeError, match="Generator"):
        sample_neighbourhoods((8, 8), 4, 1, 0)


def test_loss_rejects_bad_inputs():
    x, nb = randn(10, 16), torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match="samples, units"):
        spatial_correlation_loss(x[0], (4, 4), nb)
    with pytest.raises(ValueError, match="16 units but the 4x5 sheet has 20"):
        spatial_correlation_loss(x, (4, 5), nb)
    with pytest.raises(ValueError, match="at least 2 samples"):
        spatial_correlation_loss(x[:1], (4, 4), nb)
    with pytest.raises(ValueError, match="k >= 3"):
        spatial_correlation_loss(x, (4, 4), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="k >= 3"):
        spatial_correlation_loss(x, (4, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        spatial_correlation_loss(x, (4, 4), nb.float())


def test_unit_responses_linear_and_tokens():
    out = randn(4, 6)
    assert torch.equal(unit_responses(out), out)
    tokens = randn(3, 5, 8)
    flat = unit_responses(tokens)
    assert flat.shape == (15, 8)
    assert torch.equal(flat[1 * 5 + 2], tokens[1, 2])


def test_unit_responses_conv():
    out = randn(2, 6, 3, 4)
    locations = unit_responses(out, unit_dim=1)
    assert locations.shape == (2 * 3 * 4, 6)
    assert torch.equal(locations[1 * 12 + 2 * 4 + 3], out[1, :, 2, 3])
    pooled = unit_responses(out, unit_dim=1, conv="pooled")
    assert pooled.shape == (2, 6)
    torch.testing.assert_close(pooled, out.mean(dim=(2, 3)))
    assert torch.equal(unit_responses(out, unit_dim=-3), locations)
    assert unit_responses(out.to(torch.bfloat16), unit_dim=1).dtype == torch.bfloat16


def test_unit_responses_pooled_is_a_no_op_without_locations():
    out = randn(3, 5, 8)
    assert torch.equal(unit_responses(out, conv="pooled"), unit_responses(out))


@pytest.mark.parametrize("output,kwargs,match", [
    ((torch.zeros(2, 3), torch.zeros(2)), {}, "got a tuple"),
    (torch.zeros(5), {}, "sample axis and a unit axis"),
    (torch.zeros(2, 3), {"unit_dim": 2}, "unit_dim=2"),
    (torch.zeros(2, 3, 4, 4), {"unit_dim": 1, "conv": "mean"}, "conv='mean'"),
])
def test_unit_responses_rejects(output, kwargs, match):
    with pytest.raises(ValueError, match=match):
        unit_responses(output, **kwargs)
