"""KANs with other edge bases than the B-spline, as INR-Bench compares them.

Same layers as kancoin.models.kan (SiLU base path, coefficients times a per-edge scaler, the
bounded squash between layers); only the basis each input is expanded on differs:

- kan-cheby: Chebyshev polynomials T_0 .. T_n of x / r (ChebyKAN), n = the layer's grid size;
  coefficients start at N(0, 1 / (in (n + 1))) as ChebyKAN's.
- kan-rbf: G Gaussian bumps exp(-((x - c_j) / h)^2), centres evenly over [-r, r], h their
  spacing (FastKAN); coefficients start at N(0, 0.1).
- kan-fourier: 1, cos(k pi x / r), sin(k pi x / r) for k = 1 .. K (FourierKAN, with the
  constant term); coefficients start at N(0, 1 / (in K)) as FourierKAN's.

The header carries layers, width, the grid sizes (hidden and input layer) and the range r:
the basis is a pure function of them. Each basis can represent a constant (T_0, the Fourier
1, the sum of the bumps), which is how init_output moves the output onto the signal's mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from kancoin.models.base import HeaderField
from kancoin.models.kan import TRAIN_MEMORY_BYTES, Basis, Kan, KanSpec

HEADER_FIELDS = (
    HeaderField("layers", "uint:6", 1, 63),
    HeaderField("width", "uint:12", 1, 4095),
    HeaderField("grid_size", "uint:8", 1, 255),
    HeaderField("input_grid_size", "uint:12", 1, 4095),
    HeaderField("grid_range", "floatbe:32", 1e-3, 1e3),
)


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


@dataclass(frozen=True)
class KanBasisSpec(KanSpec):
    """A KAN whose edges use `bases` instead of B-splines (no spline order in the header)."""

    header_fields: ClassVar[tuple[HeaderField, ...]] = HEADER_FIELDS
    label: ClassVar[str] = ""

    def build(self) -> BasisKan:
        return BasisKan(self)

    def expand(self, x: torch.Tensor, grid_size: int) -> torch.Tensor:
        raise NotImplementedError

    def constant(self, num_bases: int) -> torch.Tensor:
        """Coefficients whose combination of the bases is (about) constant: the first
        basis (T_0, the Fourier 1); RbfKanSpec overrides it with all the bumps."""
        return torch.nn.functional.one_hot(torch.tensor(0), num_bases).float()

    def basis(self, grid_size: int) -> Basis:
        def expand(x: torch.Tensor) -> torch.Tensor:
            return self.expand(x, grid_size)

        return expand

    def train_chunk(self) -> int:
        """Coordinates per backward pass: every basis value of every input is kept, with
        about two intermediates of the same size."""
        per_coord = 4 * sum(
            d * 3 * self.num_bases(g) for d, g in zip(self.dims(), self.grid_sizes(), strict=False)
        )
        return max(1024, TRAIN_MEMORY_BYTES // per_coord)

    def describe(self) -> str:
        return (
            f"{self.name} {self.layers}x{self.width} ({self.label} {self.input_grid_size}/"
            f"{self.grid_size}, range ±{self.grid_range:g})"
        )


@dataclass(frozen=True)
class ChebyshevKanSpec(KanBasisSpec):
    model_id: ClassVar[int] = 11
    name: ClassVar[str] = "kan-cheby"
    label: ClassVar[str] = "degree"

    grid_size: int = 8
    input_grid_size: int = 64

    def num_bases(self, grid_size: int) -> int:
        return grid_size + 1

    def expand(self, x: torch.Tensor, grid_size: int) -> torch.Tensor:
        return chebyshev_bases(x, grid_size, self.grid_range)

    def spline_init(self, in_dim: int, num_bases: int) -> float:
        return 1.0 / (in_dim * num_bases)


@dataclass(frozen=True)
class RbfKanSpec(KanBasisSpec):
    model_id: ClassVar[int] = 12
    name: ClassVar[str] = "kan-rbf"
    label: ClassVar[str] = "centres"

    grid_size: int = 8
    input_grid_size: int = 64

    def num_bases(self, grid_size: int) -> int:
        return grid_size

    def expand(self, x: torch.Tensor, grid_size: int) -> torch.Tensor:
        return rbf_bases(x, grid_size, self.grid_range)

    def constant(self, num_bases: int) -> torch.Tensor:
        return torch.ones(num_bases)


@dataclass(frozen=True)
class FourierKanSpec(KanBasisSpec):
    model_id: ClassVar[int] = 13
    name: ClassVar[str] = "kan-fourier"
    label: ClassVar[str] = "frequencies"

    grid_size: int = 4
    input_grid_size: int = 32

    def num_bases(self, grid_size: int) -> int:
        return 2 * grid_size + 1

    def expand(self, x: torch.Tensor, grid_size: int) -> torch.Tensor:
        return fourier_bases(x, grid_size, self.grid_range)

    def spline_init(self, in_dim: int, num_bases: int) -> float:
        return 1.0 / math.sqrt(in_dim * (num_bases - 1) / 2)


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
        constant = self.spec.constant(layer.spline_weight.shape[-1]).to(layer.spline_weight)
        unit = layer.spline_scaler.sign().unsqueeze(-1) * constant
        layer.spline_weight.add_(unit)
        response = self(grid).mean(dim=0) - before
        layer.spline_weight.sub_(unit)
        if bool((response.abs() > 1e-6).all()):
            shift = (mean.to(before.device) - before) / response
            layer.spline_weight.add_(shift.view(-1, 1, 1) * unit)
