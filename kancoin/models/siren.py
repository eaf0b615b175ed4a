"""SIREN (Sitzmann et al. 2020) as used by COIN: sine layers, then a linear output.

`Siren` is also the coordinate MLP other activations build on: it takes its activation as a
parameter, and only with the sine does it offer the hand-written training step and the
native renderer (both compute sines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from kancoin.models.base import ELEMENTWISE_COST, HeaderField, ModelSpec

if TYPE_CHECKING:
    from kancoin.models.network import CodedModel


@dataclass(frozen=True)
class SirenSpec(ModelSpec):
    """`layers` sine layers of `width` units, then one linear layer (COIN's "layers x width")."""

    model_id: ClassVar[int] = 1
    name: ClassVar[str] = "siren"
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        HeaderField("layers", "uint:6", 1, 63),
        HeaderField("width", "uint:12", 1, 4095),
        HeaderField("w0_first", "floatbe:32", 1e-3, 1e6),
        HeaderField("w0", "floatbe:32", 1e-3, 1e6),
    )

    layers: int = 10
    width: int = 40
    w0_first: float = 30.0
    w0: float = 30.0

    def build(self) -> CodedModel:
        from kancoin.models.nets.siren import Siren

        return Siren(self)

    @classmethod
    def takes_prior(cls) -> bool:
        """The plain SIREN only: the .kprior layout holds exactly its fields."""
        return cls is SirenSpec

    def tensor_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        dims = [self.input_width()] + [self.width] * self.layers + [self.out_features]
        shapes = []
        for i in range(len(dims) - 1):
            shapes.append((f"layer{i}.weight", (dims[i + 1], dims[i])))
            shapes.append((f"layer{i}.bias", (dims[i + 1],)))
        return shapes

    def input_width(self) -> int:
        """Width of what the first layer reads (the coordinates, or an encoding of them)."""
        return self.in_features

    def macs_per_sample(self) -> int:
        """The products, and a sine per hidden unit."""
        return self.num_params() + ELEMENTWISE_COST * self.layers * self.width

    def render_bytes_per_sample(self) -> int:
        """The layer input, its product and the sine's temporary, float32."""
        return 4 * (3 * max(self.width, self.input_width()) + self.out_features)

    def describe(self) -> str:
        return f"siren {self.layers}x{self.width} (w0 {self.w0_first:g}/{self.w0:g})"
