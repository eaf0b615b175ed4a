"""KAN (Kolmogorov-Arnold network) with B-spline edges, as used by KAN COIN.

Each `KANLinear` layer follows the efficient-kan formulation (our own code):

    y = SiLU(x) @ W_base^T + sum_i sum_j  s[o, i] * c[o, i, j] * B_j(x_i)

where B_j are the G + k B-spline bases of order k on a uniform grid of G intervals over
[-r, r], extended by k knots on each side (Cox-de Boor recursion), c are the spline
coefficients and s the per-edge spline scaler. No bias. The grid is fixed by (G, k, r),
all carried in the header: never data-dependent, so the decoder needs nothing else. The
input layer, which reads raw coordinates, has its own finer G (`input_grid_size`).

Hidden activations are squashed by `r * tanh(h / r)` between layers. The bases are non-zero
only inside the (extended) grid, so an activation that drifts outside it loses its spline
and keeps only the SiLU path; a bounded, parameter-free, per-coordinate squash keeps every
hidden value where the bases live, costs no bits, and (unlike a normalisation over the
batch) makes the output of a coordinate independent of which other coordinates are
evaluated with it, which chunked rendering and resolution-free decoding rely on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from kancoin.models.base import ELEMENTWISE_COST, HeaderField, ModelSpec

TRAIN_MEMORY_BYTES = 256 << 20  # activation memory one fitting pass may hold

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


@dataclass(frozen=True)
class KanSpec(ModelSpec):
    """`layers` hidden KAN layers of `width` units, then an output KAN layer.

    Parameters per layer: out * in * (G + k + 2) (base weights, coefficients, scalers). The
    input layer has its own, finer grid: it sees raw coordinates, and its G alone decides
    how much detail per axis the network can place; at 2 inputs it costs few parameters.
    """

    model_id: ClassVar[int] = 2
    name: ClassVar[str] = "kan"
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        HeaderField("layers", "uint:6", 1, 63),
        HeaderField("width", "uint:12", 1, 4095),
        HeaderField("grid_size", "uint:8", 1, 255),
        HeaderField("input_grid_size", "uint:12", 1, 4095),
        HeaderField("spline_order", "uint:3", 0, 7),
        HeaderField("grid_range", "floatbe:32", 1e-3, 1e3),
    )
    lr_scale: ClassVar[float] = 20.0  # spline coefficients want a far larger step than SIREN
    plan_max_layers: ClassVar[int | None] = 3  # KAN COIN: 3 hidden layers; width follows rate
    batch_fraction: ClassVar[float | None] = 0.2  # tuned at 20 %; small batches not measured
    fine_tunes_quantized: ClassVar[bool] = False  # 0.03 dB lost at 9 bits: nothing to recover

    layers: int = 3
    width: int = 16
    grid_size: int = 8
    input_grid_size: int = 64  # the first layer's grid: sets the finest detail along each axis
    spline_order: int = 3
    grid_range: float = 1.0

    def dims(self) -> list[int]:
        return [self.in_features] + [self.width] * self.layers + [self.out_features]

    def grid_sizes(self) -> list[int]:
        """G of each layer: the input layer's own, then grid_size."""
        return [self.input_grid_size] + [self.grid_size] * self.layers

    def build(self) -> Kan:
        return Kan(self)

    def num_bases(self, grid_size: int) -> int:
        """Basis functions per edge of a layer with this grid size (G + k B-splines)."""
        return grid_size + self.spline_order

    def basis(self, grid_size: int) -> Basis | None:
        """The basis of a layer with this grid size; None: the B-spline (kancoin.models.kan_bases
        has the others)."""
        return None

    def spline_init(self, in_dim: int, num_bases: int) -> float:
        """Standard deviation of the initial coefficients."""
        return 0.1

    def tensor_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        dims = self.dims()
        shapes = []
        for i, grid_size in enumerate(self.grid_sizes()):
            out_dim, in_dim = dims[i + 1], dims[i]
            shapes.append((f"layer{i}.base", (out_dim, in_dim)))
            shapes.append((f"layer{i}.spline", (out_dim, in_dim, self.num_bases(grid_size))))
            shapes.append((f"layer{i}.scaler", (out_dim, in_dim)))
        return shapes

    def train_chunk(self) -> int:
        """Coordinates per backward pass that keep activations near TRAIN_MEMORY_BYTES.

        Each input keeps its G + k dense bases (for the coefficient gradient) and a few
        k + 1 sized intermediates; measured peak is within this estimate.
        """
        k = self.spline_order
        per_coord = 4 * sum(
            d * (2 * (grid_size + k) + 6 * (k + 1))
            for d, grid_size in zip(self.dims(), self.grid_sizes(), strict=False)
        )
        return max(1024, TRAIN_MEMORY_BYTES // per_coord)

    def _layer_shapes(self) -> list[tuple[int, int, int]]:
        """(in, out, G + k) of each layer."""
        dims = self.dims()
        return [
            (dims[i], dims[i + 1], grid_size + self.spline_order)
            for i, grid_size in enumerate(self.grid_sizes())
        ]

    def macs_per_sample(self) -> int:
        """Per layer: the base and spline products, then per input the basis evaluation,
        a few dozen elementwise ops over its k + 1 local values and G + k dense ones (knot
        interval, powers, scatter), SiLU and the squash. Calibrated against SIREN: a KAN
        renders at the same work per second (1.5e9/s before these elementwise terms)."""
        k1 = self.spline_order + 1
        total = 0
        for in_dim, out_dim, bases in self._layer_shapes():
            basis = ELEMENTWISE_COST * (15 + 8 * k1 + 2 * bases)
            total += out_dim * in_dim * (bases + 1) + in_dim * basis
            total += ELEMENTWISE_COST * (in_dim + out_dim)
        return total

    def render_bytes_per_sample(self) -> int:
        """The largest layer's dense basis tensor (in x (G + k) float32) and the local
        bases' temporaries (powers, products, int64 indices), plus its input and outputs."""
        k1 = self.spline_order + 1
        peak = 0
        for in_dim, out_dim, bases in self._layer_shapes():
            local = in_dim * k1 * (4 * k1 + 4 * 4 + 8 * 3)
            peak = max(peak, 4 * in_dim * bases + local + 4 * 8 * in_dim + 4 * 4 * out_dim)
        return peak

    def render_extra_bytes(self) -> int:
        """Rendering multiplies coefficients by scalers once per network, not per chunk."""
        return 4 * sum(o * i * b for i, o, b in self._layer_shapes())

    def describe(self) -> str:
        return (
            f"kan {self.layers}x{self.width} (grid {self.input_grid_size}/{self.grid_size}, "
            f"order {self.spline_order}, range ±{self.grid_range:g})"
        )


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
