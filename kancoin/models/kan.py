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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from kancoin.models.base import ELEMENTWISE_COST, HeaderField, ModelSpec

if TYPE_CHECKING:
    import torch

    from kancoin.models.network import CodedModel

    Basis = Callable[[torch.Tensor], torch.Tensor]

TRAIN_MEMORY_BYTES = 256 << 20  # activation memory one fitting pass may hold


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

    def build(self) -> CodedModel:
        from kancoin.models.nets.kan import Kan

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
