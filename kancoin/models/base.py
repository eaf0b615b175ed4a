"""The model contract: what every coded model family provides, so that the container, the
fit, the rate plan and the renderer treat all families alike.

A family is a `ModelSpec` (hyperparameters that fix the network's shape, written in the
.inr header; how to size itself for a bit budget; what rendering it costs) and a
`CodedModel` (the network, kancoin.models.network). Nothing outside kancoin/models/ looks at
the concrete class: a new family is its spec module (kancoin/models/NAME.py), its network
(kancoin/models/nets/NAME.py) and one line in kancoin/models/__init__.py.

Spec modules do not import torch: reading a header and pricing its decode (kancoin.budget)
must not cost torch's import (over a second), so a hostile file is refused at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from kancoin.fields import HeaderField

if TYPE_CHECKING:
    from kancoin.models.network import CodedModel

# an elementwise transcendental (sin, tanh, silu) costs about this many multiply-adds of a
# matrix product on a CPU (measured: SIREN 10x64 renders at half the MAC rate of 2x1024)
ELEMENTWISE_COST = 20


@dataclass(frozen=True)
class ModelSpec:
    """Hyperparameters that fully determine a network's shape; carried in the header.

    Subclasses set `model_id` (explicit, stable), `name`, and `header_fields` in the order
    they are written. A spec rebuilt from the header builds exactly the encoder's network.
    """

    model_id: ClassVar[int]
    name: ClassVar[str]
    header_fields: ClassVar[tuple[HeaderField, ...]]
    lr_scale: ClassVar[float] = 1.0  # multiplies the preset's learning rate for this family
    plan_max_layers: ClassVar[int | None] = None  # depth cap when sized from a rate (rate.plan)
    # share of coordinates per step for this family; None: the preset's (tuned for SIREN)
    batch_fraction: ClassVar[float | None] = None
    # whether presets fine-tune the rounded network (their qat_share) for this family
    fine_tunes_quantized: ClassVar[bool] = True
    # coded bits per parameter the rate plan aims at for images (docs/RD.md)
    bits_per_param: ClassVar[float] = 7.0

    in_features: int
    out_features: int

    @classmethod
    def takes_prior(cls) -> bool:
        """Whether a cohort prior (kancoin.prior) can supply this family's first layers:
        tensors come in (weight, bias) pairs per layer and the .kprior layout holds the
        family's fields."""
        return False

    @classmethod
    def own_codec(cls):
        """The module that trains and codes this family's payload itself (plan, encode,
        load_models, payload_report; kancoin.grid_codec), or None for the shared per-tensor
        path."""
        return None

    def build(self) -> CodedModel:
        """The network (kancoin.models.nets): imported here, so reading a header needs no torch."""
        raise NotImplementedError

    def tensor_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Names and shapes of the coded tensors, in bitstream order."""
        raise NotImplementedError

    def num_params(self) -> int:
        total = 0
        for _, shape in self.tensor_shapes():
            count = 1
            for dim in shape:
                count *= dim
            total += count
        return total

    def describe(self) -> str:
        raise NotImplementedError

    def train_chunk(self) -> int | None:
        """Coordinates per forward/backward pass when fitting; None: the whole batch."""
        return None

    def macs_per_sample(self) -> int:
        """Multiply-adds (and their equivalent in elementwise work) to render one coordinate.

        The decode budget multiplies this by the output samples before any work is done.
        The default suits an MLP, which uses every parameter once per coordinate, with
        ELEMENTWISE_COST per output of each tensor for its activation.
        """
        return self.num_params() + ELEMENTWISE_COST * sum(
            shape[0] for _, shape in self.tensor_shapes()
        )

    def render_bytes_per_sample(self) -> int:
        """Peak activation bytes one coordinate holds while rendering (sizes render chunks).

        The default: a few float32 copies of the widest tensor's outputs; families whose
        forward holds more (KAN's basis tensor) say so.
        """
        return 4 * 4 * max(shape[0] for _, shape in self.tensor_shapes())

    def render_extra_bytes(self) -> int:
        """Bytes the rendering forward precomputes once per network, beyond the weights."""
        return 0

    def header_values(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in self.header_fields}

    @classmethod
    def from_header(cls, in_features: int, out_features: int, values: dict) -> ModelSpec:
        return cls(in_features=in_features, out_features=out_features, **values)

    def replace(self, **changes) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    def for_first_frequency(self, w0_first: float) -> ModelSpec:
        """This spec for a signal that wants the first layer to resolve frequencies up to
        about w0_first (a sine family's first-layer w0: 30 for images, hundreds for audio
        segments). Sine families take it as their w0_first; encodings scale with it."""
        if hasattr(self, "w0_first"):
            return self.replace(w0_first=w0_first)
        return self

    def size_for(
        self,
        budget_bits: float,
        *,
        overhead_bits: Callable[[ModelSpec], float],
        bits_per_param: float,
        max_layers: int,
        networks: int = 1,
    ) -> ModelSpec:
        """This spec resized so that `networks` copies fit `budget_bits`: overhead_bits(spec)
        (header, CRC, coder slack) plus bits_per_param per parameter. The default searches
        depth x width, as coordinate MLPs are sized (kancoin.models.sizing); families shaped
        otherwise override it. Raises SizeError when nothing fits."""
        from kancoin.models.sizing import layers_by_width

        return layers_by_width(
            self,
            budget_bits,
            overhead_bits=overhead_bits,
            bits_per_param=bits_per_param,
            max_layers=max_layers,
            networks=networks,
        )


class SizeError(ValueError):
    """No shape of a family fits a bit budget (the rate plan turns it into a RateError)."""

    def __init__(self, message: str, smallest_bits: float):
        super().__init__(message)
        self.smallest_bits = smallest_bits
