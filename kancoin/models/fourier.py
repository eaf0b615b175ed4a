"""A SIREN reading a Fourier-feature (positional) encoding of its coordinates.

Each coordinate x enters as x, sin(2^k pi x) and cos(2^k pi x) for k < octaves (NeRF's
positional encoding; Tancik et al. 2020 on why fixed Fourier features help coordinate
networks learn high frequencies). The encoding has no parameters: the octave count in the
header rebuilds it exactly. Measured against the plain SIREN in docs/RD.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from kancoin.models.base import ELEMENTWISE_COST, HeaderField
from kancoin.models.siren import SirenSpec

if TYPE_CHECKING:
    from kancoin.models.network import CodedModel


@dataclass(frozen=True)
class FourierSpec(SirenSpec):
    """A SIREN's `layers` x `width`, on `octaves` octaves of sines and cosines per axis."""

    model_id: ClassVar[int] = 3
    name: ClassVar[str] = "fourier"
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        *SirenSpec.header_fields,
        HeaderField("octaves", "uint:4", 1, 15),
    )

    octaves: int = 8

    def build(self) -> CodedModel:
        from kancoin.models.nets.fourier import FourierSiren

        return FourierSiren(self)

    def input_width(self) -> int:
        return self.in_features * (1 + 2 * self.octaves)

    def macs_per_sample(self) -> int:
        """The SIREN's, and the encoding: per octave and axis a product, a sine and a
        cosine, and their concatenation."""
        encoding = 4 * self.in_features * self.octaves + self.input_width()
        return super().macs_per_sample() + ELEMENTWISE_COST * encoding

    def render_bytes_per_sample(self) -> int:
        """The SIREN's, and the encoding's angles, sines, cosines and their concatenation."""
        angles = self.in_features * self.octaves
        return super().render_bytes_per_sample() + 4 * (3 * angles + self.input_width())

    def describe(self) -> str:
        return (
            f"fourier {self.layers}x{self.width} ({self.octaves} octaves, "
            f"w0 {self.w0_first:g}/{self.w0:g})"
        )
