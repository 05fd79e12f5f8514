"""The sheet blur of TopoLoss: bilinear down- then up-sampling of the unit sheet as one sparse operator, and the
analytic gradient of the cosine to it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_factor(factor: float, side: int, axis: str, where: str = "") -> float:
    """Validate a down-sampling factor against the sheet side it acts on (1 <= factor <= side)."""
    factor = float(factor)
    if not 1.0 <= factor <= side:
        raise ValueError(
            f"factor_{axis}={factor:g} is outside [1, {side}] for the sheet side {axis}={side}{where}; "
            "the down-sampling factor must be at least 1 and at most the sheet side"
        )
    return factor


def blur_matrix(side: int, factor: float, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> torch.Tensor:
    """(side, side) matrix A with A @ x = bilinear up(down(x, scale_factor=1/factor), size=side) along one axis."""
    check_factor(factor, side, "axis")
    basis = torch.eye(side, dtype=torch.float64, device=device).unsqueeze(0)  # (1, channel=unit, length)
    down = F.interpolate(basis, scale_factor=1.0 / factor, mode="linear")
    up = F.interpolate(down, size=side, mode="linear")
    return up[0].T.contiguous().to(dtype)  # column j = blurred j-th basis vector


def sheet_blur_operator(h: int, w: int, factor_h: float, factor_w: float, dtype: torch.dtype = torch.float32,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Sparse (H·W, H·W) matrix A_h ⊗ A_w of the whole sheet blur, built from the per-axis matrices' non-zeros.

    Bilinear resampling has at most 2 taps per output, so each axis has at most 4 non-zeros per row (2 for an odd
    integer φ, whose down-sampling grid falls on pixel centres) and A at most 16: applying it costs a few
    multiply-adds per weight, where dense per-axis matrices cost 2(H + W).
    """
    a_h = blur_matrix(h, factor_h, torch.float64).to_sparse()
    a_w = blur_matrix(w, factor_w, torch.float64).to_sparse()
    (row_h, col_h), (row_w, col_w) = a_h.indices(), a_w.indices()
    rows = (row_h[:, None] * w + row_w[None, :]).reshape(-1)
    cols = (col_h[:, None] * w + col_w[None, :]).reshape(-1)
    values = (a_h.values()[:, None] * a_w.values()[None, :]).reshape(-1)
    op = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (h * w, h * w), check_invariants=True)
    return op.coalesce().to(dtype=dtype, device=device)


class SheetBlur:
    """A sheet blur A (sparse, see sheet_blur_operator) applied in place, and its analytic TopoLoss gradient.

    The gradient α·b - β·u + Aᵀ(α·u - γ·b) of the backward is written as P·u + Q·b with P = Aᵀdiag(α) - diag(β)
    and Q = diag(α) - Aᵀdiag(γ): two sparse products on the fixed pattern of Aᵀ + I, no (units, fan-in) temporaries.
    """

    def __init__(self, op: torch.Tensor) -> None:
        self.op = op.coalesce()
        n = op.shape[0]
        op_t = self.op.t().coalesce()
        diag = torch.arange(n, device=op.device).expand(2, n)
        pattern = torch.sparse_coo_tensor(torch.cat([op_t.indices(), diag], 1),
                                          torch.cat([op_t.values(), op_t.values().new_zeros(n)]), op.shape,
                                          check_invariants=True)
        pattern = pattern.coalesce()  # sums the zeros onto Aᵀ's diagonal entries; keeps explicit zeros
        self.indices = pattern.indices()
        self.values_t = pattern.values()
        self.diag = (self.indices[0] == self.indices[1]).to(op.dtype)

    @classmethod
    def for_sheet(cls, sheet: tuple[int, int], factor_h: float, factor_w: float, dtype: torch.dtype,
                  device: torch.device | str | None) -> SheetBlur:
        """The blur of an H×W sheet with factors (φh, φw), in `dtype` on `device`."""
        return cls(sheet_blur_operator(*sheet, factor_h, factor_w, dtype, device))

    def blur(self, units: torch.Tensor) -> torch.Tensor:
        """A @ units, accumulated in place into a zeroed buffer (torch.sparse.mm allocates and is ~10x slower on CPU)."""
        return units.new_zeros((self.op.shape[0], units.shape[1])).addmm_(self.op, units)

    def add_grad(self, out: torch.Tensor, units: torch.Tensor, blurred: torch.Tensor, alpha: torch.Tensor,
                 beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """out += P·units + Q·blurred in place (α, β, γ per unit, already times -∂total/∂loss / N)."""
        rows, cols = self.indices
        p = torch.sparse_coo_tensor(self.indices, self.values_t * alpha[cols] - self.diag * beta[rows],
                                    self.op.shape, is_coalesced=True, check_invariants=False)
        q = torch.sparse_coo_tensor(self.indices, self.diag * alpha[rows] - self.values_t * gamma[cols],
                                    self.op.shape, is_coalesced=True, check_invariants=False)
        return out.addmm_(p, units).addmm_(q, blurred)
