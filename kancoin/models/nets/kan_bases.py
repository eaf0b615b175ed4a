"""The networks of the KANs with other bases (kan-cheby, kan-rbf, kan-fourier). Their specs
(header fields, size and cost; no torch) and the reasoning: kancoin.models.kan_bases."""

from __future__ import annotations

import math

import torch

from kancoin.models.nets.kan import Basis, Kan


def chebyshev_bases(x: torch.Tensor, degree: int, grid_range: float) -> torch.Tensor:
    """(..., in) -> (..., in, degree + 1): T_j(x / r), by the three-term recurrence (stable
    on [-1, 1], unlike cos(j arccos t), whose gradient is infinite at the ends)."""
    t = (x / grid_range).clamp(-1.0, 1.0)
    values = [torch.ones_like(t), t]
    for _ in range(2, degree + 1):
        values.append(2.0 * t * values[-1] - values[-2])
    return torch.stack(values[: degree + 1], dim=-1)


def rbf_bases(x: torch.Tensor, count: int, grid_range: float) -> torch.Tensor:
    """(..., in) -> (..., in, count): Gaussian bumps with centres spaced h over [-r, r]."""
    centres = torch.linspace(-grid_range, grid_range, count, dtype=x.dtype, device=x.device)
    spacing = 2.0 * grid_range / max(1, count - 1)
    return torch.exp(-((x.unsqueeze(-1) - centres) / spacing).square())


def fourier_bases(x: torch.Tensor, frequencies: int, grid_range: float) -> torch.Tensor:
    """(..., in) -> (..., in, 2K + 1): 1, then cos and sin of k pi x / r for k = 1 .. K."""
    k = torch.arange(1, frequencies + 1, dtype=x.dtype, device=x.device)
    angles = x.unsqueeze(-1) * (k * (math.pi / grid_range))
    return torch.cat([torch.ones_like(x).unsqueeze(-1), torch.cos(angles), torch.sin(angles)], -1)


BASES = {"chebyshev": chebyshev_bases, "rbf": rbf_bases, "fourier": fourier_bases}


def basis_expansion(name: str, grid_size: int, grid_range: float) -> Basis:
    """The basis `name` of a layer with this grid size, as KANLinear calls it."""
    function = BASES[name]

    def expand(x: torch.Tensor) -> torch.Tensor:
        return function(x, grid_size, grid_range)

    return expand


class BasisKan(Kan):
    @torch.no_grad()
    def init_output(self, mean: torch.Tensor) -> None:
        """Start from the signal's mean: the output is linear in the last layer's
        coefficients, so adding its constant-making coefficients c, scaled per output, moves
        the average output over a coarse grid by a measured amount per unit of c."""
        layer = self.layers[-1]
        axis = torch.linspace(-1.0, 1.0, 17, device=layer.spline_weight.device)
        axes = torch.meshgrid(*[axis] * self.spec.in_features, indexing="ij")
        grid = torch.stack(axes, dim=-1).reshape(-1, self.spec.in_features)
        before = self(grid).mean(dim=0)
        count = layer.spline_weight.shape[-1]
        if self.spec.constant_is_sum:
            constant = torch.ones(count)
        else:
            constant = torch.nn.functional.one_hot(torch.tensor(0), count).float()
        constant = constant.to(layer.spline_weight)
        unit = layer.spline_scaler.sign().unsqueeze(-1) * constant
        layer.spline_weight.add_(unit)
        response = self(grid).mean(dim=0) - before
        layer.spline_weight.sub_(unit)
        if bool((response.abs() > 1e-6).all()):
            shift = (mean.to(before.device) - before) / response
            layer.spline_weight.add_(shift.view(-1, 1, 1) * unit)
