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
from typing import TYPE_CHECKING, ClassVar

from kancoin.models.base import HeaderField
from kancoin.models.kan import TRAIN_MEMORY_BYTES, KanSpec

if TYPE_CHECKING:
    from kancoin.models.kan import Basis
    from kancoin.models.network import CodedModel

HEADER_FIELDS = (
    HeaderField("layers", "uint:6", 1, 63),
    HeaderField("width", "uint:12", 1, 4095),
    HeaderField("grid_size", "uint:8", 1, 255),
    HeaderField("input_grid_size", "uint:12", 1, 4095),
    HeaderField("grid_range", "floatbe:32", 1e-3, 1e3),
)


@dataclass(frozen=True)
class KanBasisSpec(KanSpec):
    """A KAN whose edges use `bases` instead of B-splines (no spline order in the header)."""

    header_fields: ClassVar[tuple[HeaderField, ...]] = HEADER_FIELDS
    label: ClassVar[str] = ""
    # the basis (kancoin.models.nets.kan_bases.BASES); its constant function is the first
    # basis (T_0, the Fourier 1), or the sum of all of them where `constant_is_sum`
    basis_name: ClassVar[str] = ""
    constant_is_sum: ClassVar[bool] = False

    def build(self) -> CodedModel:
        from kancoin.models.nets.kan_bases import BasisKan

        return BasisKan(self)

    def basis(self, grid_size: int) -> Basis:
        from kancoin.models.nets.kan_bases import basis_expansion

        return basis_expansion(self.basis_name, grid_size, self.grid_range)

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
    basis_name: ClassVar[str] = "chebyshev"

    grid_size: int = 8
    input_grid_size: int = 64

    def num_bases(self, grid_size: int) -> int:
        return grid_size + 1

    def spline_init(self, in_dim: int, num_bases: int) -> float:
        return 1.0 / (in_dim * num_bases)


@dataclass(frozen=True)
class RbfKanSpec(KanBasisSpec):
    model_id: ClassVar[int] = 12
    name: ClassVar[str] = "kan-rbf"
    label: ClassVar[str] = "centres"
    basis_name: ClassVar[str] = "rbf"
    constant_is_sum: ClassVar[bool] = True

    grid_size: int = 8
    input_grid_size: int = 64

    def num_bases(self, grid_size: int) -> int:
        return grid_size


@dataclass(frozen=True)
class FourierKanSpec(KanBasisSpec):
    model_id: ClassVar[int] = 13
    name: ClassVar[str] = "kan-fourier"
    label: ClassVar[str] = "frequencies"
    basis_name: ClassVar[str] = "fourier"

    grid_size: int = 4
    input_grid_size: int = 32

    def num_bases(self, grid_size: int) -> int:
        return 2 * grid_size + 1

    def spline_init(self, in_dim: int, num_bases: int) -> float:
        return 1.0 / math.sqrt(in_dim * (num_bases - 1) / 2)
