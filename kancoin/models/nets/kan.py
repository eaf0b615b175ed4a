"""The B-spline KAN network. Its spec (header fields, size and cost; no torch) and the
reasoning behind it: kancoin.models.kan."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional

from kancoin.models.kan import KanSpec

Basis = Callable[[torch.Tensor], torch.Tensor]


def uniform_knots(
    grid_size: int, order: int, grid_range: float, *, dtype=None, device=None
) -> torch.Tensor:
    """G + 2k + 1 knots: G equal intervals over [-r, r], extended by k knots each side."""
    step = 2.0 * grid_range / grid_size
    positions = torch.arange(-order, grid_size + order + 1, dtype=torch.float64)
    return (-grid_range + step * positions).to(dtype=dtype or torch.float32, device=device)


def bspline_bases(x: torch.Tensor, grid_size: int, order: int, grid_range: float) -> torch.Tensor:
    """B-spline basis values (..., in) -> (..., in, G + k) on the uniform extended grid.

    Cox-de Boor recursion evaluated where it is non-zero (de Boor's triangular scheme): an
    input in knot interval m only touches bases m-k .. m, so the recursion runs on k + 1
    values per input instead of G + 2k, and one scatter places them. Same values as the full
    recursion, a fraction of the memory traffic and of the autograd graph. Inside [-r, r)
    the G + k values of each input sum to one (partition of unity); outside the extended
    grid they are all zero.
    """
    num_bases = grid_size + order
    knots = uniform_knots(grid_size, order, grid_range, dtype=x.dtype, device=x.device)
    padded = torch.cat([knots.new_full((1,), -math.inf), knots, knots.new_full((1,), math.inf)])
    cell = _knot_interval(x.detach(), padded, grid_size / (2.0 * grid_range))
    # hidden values (squashed) and coordinates normally lie in [-r, r): every one of their
    # k + 1 bases exists, and no masking is needed
    in_range = bool(((cell >= order) & (cell < num_bases)).all())
    if not in_range:
        cell = cell.clamp(-1, num_bases + order)  # -1 and G + 2k: outside the extended grid
    offset = (x - padded[cell + 1]) * (grid_size / (2.0 * grid_range))  # in [0, 1)
    local = _local_bases(offset, order)  # (..., in, k + 1)
    index = cell.unsqueeze(-1) + torch.arange(-order, 1, device=x.device)
    if not in_range:
        inside = ((cell >= 0) & (cell < num_bases + order)).unsqueeze(-1)
        keep = inside & (index >= 0) & (index < num_bases)
        local = torch.where(keep, local, torch.zeros((), dtype=x.dtype, device=x.device))
        # dropped values are zero, so clamping their indices onto a neighbour adds nothing
        index = index.clamp(0, num_bases - 1)
    dense = x.new_zeros((*x.shape, num_bases))
    return dense.scatter_add_(-1, index, local)


def _knot_interval(x: torch.Tensor, padded: torch.Tensor, scale: float) -> torch.Tensor:
    """m with t_m <= x < t_m+1 (-1 below the first knot; padded = [-inf, knots, inf]).

    Arithmetic finds it to within one interval; one comparison with the knots either side
    makes it exactly the recursion's (and the reference's) t_j <= x < t_j+1 at a knot.
    """
    last = padded.shape[0] - 2  # index of the past-the-end interval
    guess = torch.floor((x - padded[1]) * scale).clamp_(-1, last).long()
    guess -= (x < padded[guess + 1]).long()
    guess += (x >= padded[guess + 2]).long()
    return guess


def _local_bases(t: torch.Tensor, order: int) -> torch.Tensor:
    """The k + 1 non-zero bases of order k at offset t in [0, 1) of a unit-spaced interval."""
    matrix = _local_basis_polynomials(order).to(dtype=t.dtype, device=t.device)
    powers = [torch.ones_like(t)]
    for _ in range(order):
        powers.append(powers[-1] * t)
    # one (..., k + 1) x (k + 1, k + 1) product: cheaper to differentiate than Horner steps
    return torch.stack(powers, dim=-1) @ matrix


@functools.cache
def _local_basis_polynomials(order: int) -> torch.Tensor:
    """(k + 1) x (k + 1) matrix: column r holds the coefficients of basis m-k+r in t^0..t^k.

    Cox-de Boor run once on polynomials in t instead of on numbers: on uniform knots every
    denominator of degree p is p, left distances are t + j - 1 and right ones j - t (The
    NURBS Book, algorithm A2.2). Evaluating the k + 1 bases is then one small product.
    """

    def times_linear(poly: list[float], constant: float, slope: float) -> list[float]:
        return [constant * c + slope * (poly[q - 1] if q else 0.0) for q, c in enumerate(poly)]

    zero = [0.0] * (order + 1)
    values = [[1.0, *zero[1:]]]
    for degree in range(1, order + 1):
        carried = zero
        raised = []
        for r in range(degree):
            share = [c / degree for c in values[r]]
            falling = times_linear(share, r + 1.0, -1.0)  # (r + 1 - t) * share
            raised.append([a + b for a, b in zip(carried, falling, strict=True)])
            carried = times_linear(share, degree - r - 1.0, 1.0)  # (t + degree - r - 1) * share
        raised.append(carried)
        values = raised
    return torch.tensor(values, dtype=torch.float64).T


class KANLinear(nn.Module):
    """One KAN layer: SiLU base path plus B-spline path with a per-edge scaler, no bias."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        grid_size: int,
        spline_order: int,
        grid_range: float,
        spline_init: float = 0.1,
        basis: Basis | None = None,
        num_bases: int | None = None,
    ):
        """`basis` maps (..., in) to (..., in, num_bases); None: the B-spline of the grid."""
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.grid_range = grid_range
        self.basis = basis
        if num_bases is None:
            num_bases = grid_size + spline_order
        bound = 1.0 / math.sqrt(in_features)
        self.base_weight = nn.Parameter(
            torch.empty(out_features, in_features).uniform_(-bound, bound)
        )
        self.spline_weight = nn.Parameter(
            torch.empty(out_features, in_features, num_bases).normal_(0.0, spline_init)
        )
        self.spline_scaler = nn.Parameter(
            torch.empty(out_features, in_features).uniform_(-bound, bound)
        )

    def bases(self, x: torch.Tensor) -> torch.Tensor:
        if self.basis is not None:
            return self.basis(x)
        return bspline_bases(x, self.grid_size, self.spline_order, self.grid_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = functional.linear(functional.silu(x), self.base_weight)
        coefficients = self.spline_weight * self.spline_scaler.unsqueeze(-1)
        spline = functional.linear(
            self.bases(x).flatten(-2), coefficients.flatten(-2)
        )  # (N, in * (G+k)) @ (out, in * (G+k))^T
        return base + spline


class Kan(nn.Module):
    """KAN layers with a bounded squash between them (see the module docstring)."""

    def __init__(self, spec: KanSpec):
        super().__init__()
        self.spec = spec
        dims = spec.dims()
        self.layers = nn.ModuleList(
            KANLinear(
                dims[i],
                dims[i + 1],
                grid_size=grid_size,
                spline_order=spec.spline_order,
                grid_range=spec.grid_range,
                spline_init=spec.spline_init(dims[i], spec.num_bases(grid_size)),
                basis=spec.basis(grid_size),
                num_bases=spec.num_bases(grid_size),
            )
            for i, grid_size in enumerate(spec.grid_sizes())
        )

    def native_forward(self, coords: torch.Tensor):
        """forward() for rendering: each layer's coefficients x scalers computed once, not
        once per chunk (they are as large as the network)."""
        layers = [
            (
                layer,
                layer.base_weight.detach(),
                (layer.spline_weight * layer.spline_scaler.unsqueeze(-1)).detach().flatten(-2),
            )
            for layer in self.layers
        ]
        last = len(layers) - 1

        def forward(coords: torch.Tensor) -> torch.Tensor:
            h = coords
            for i, (layer, base_weight, coefficients) in enumerate(layers):
                base = functional.linear(functional.silu(h), base_weight)
                h = base + functional.linear(layer.bases(h).flatten(-2), coefficients)
                if i < last:
                    h = self.squash(h)
            return h

        return forward

    def squash(self, h: torch.Tensor) -> torch.Tensor:
        r = self.spec.grid_range
        return r * torch.tanh(h / r)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = coords
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last:
                h = self.squash(h)
        return h

    @torch.no_grad()
    def init_output(self, mean: torch.Tensor) -> None:
        """Start from the signal's mean (coordinates span [-1, 1] on every axis).

        There is no bias: the bases of an input inside the grid sum to one, so raising all
        of an edge's coefficients by d raises the output by scaler * d everywhere; the
        smallest such change over the output layer's edges moves the average output over a
        coarse coordinate grid onto the mean.
        """
        layer = self.layers[-1]
        scaler = layer.spline_scaler  # (out, in)
        axis = torch.linspace(-1.0, 1.0, 17, device=scaler.device)
        axes = torch.meshgrid(*[axis] * self.spec.in_features, indexing="ij")
        current = self(torch.stack(axes, dim=-1).reshape(-1, self.spec.in_features)).mean(dim=0)
        shift = (mean.to(scaler.device) - current) / scaler.pow(2).sum(dim=1).clamp_min(1e-12)
        layer.spline_weight.add_((shift.unsqueeze(1) * scaler).unsqueeze(-1))

    def coded_tensors(self) -> list[nn.Parameter]:
        out = []
        for layer in self.layers:
            out += [layer.base_weight, layer.spline_weight, layer.spline_scaler]
        return out
