"""A SIREN reading a Fourier-feature (positional) encoding of its coordinates.

Each coordinate x enters as x, sin(2^k pi x) and cos(2^k pi x) for k < octaves (NeRF's
positional encoding; Tancik et al. 2020 on why fixed Fourier features help coordinate
networks learn high frequencies). The encoding has no parameters: the octave count in the
header rebuilds it exactly. Measured against the plain SIREN in docs/RD.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from kancoin.models.base import ELEMENTWISE_COST, HeaderField
from kancoin.models.siren import Siren, SirenSpec


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

    def build(self) -> FourierSiren:
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


class FourierSiren(Siren):
    def __init__(self, spec: FourierSpec):
        super().__init__(spec)
        self.register_buffer(
            "scales", math.pi * 2.0 ** torch.arange(spec.octaves, dtype=torch.float32), False
        )

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        # per batch, not once per fit: the whole grid's encoding would hold d (1 + 2L) floats
        # per pixel (53 MB for a Kodak image at 8 octaves); it costs ~7 % of a step instead
        angles = (coords.unsqueeze(-1) * self.scales.to(coords.dtype)).flatten(1)
        return torch.cat([coords, torch.sin(angles), torch.cos(angles)], dim=1)
