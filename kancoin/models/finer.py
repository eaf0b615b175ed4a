"""FINER (Liu et al., CVPR 2024): the variable-periodic sine sin(w0 (|z| + 1) z), z = W h + b,
per hidden layer, then a linear output.

Published initialisation: SIREN's weights, and the first layer's bias drawn from the wider
U(-k, k) (k = FIRST_BIAS_SCALE), which spreads the first layer's units over the frequency
ranges |z| + 1 selects. As in the authors' code, the factor |z| + 1 is not differentiated.
Decoding needs only the w0s (SIREN's header fields); k only shapes the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from kancoin.models.base import HeaderField
from kancoin.models.siren import SirenSpec

if TYPE_CHECKING:
    from kancoin.models.network import CodedModel

FIRST_BIAS_SCALE = 1.0  # FINER's k for images (their code offers up to 20)


@dataclass(frozen=True)
class FinerSpec(SirenSpec):
    """`layers` FINER layers of `width` units, then one linear layer; SIREN's w0 fields."""

    model_id: ClassVar[int] = 7
    name: ClassVar[str] = "finer"
    header_fields: ClassVar[tuple[HeaderField, ...]] = SirenSpec.header_fields

    def build(self) -> CodedModel:
        from kancoin.models.nets.finer import FinerMlp

        return FinerMlp(self)

    def describe(self) -> str:
        return f"finer {self.layers}x{self.width} (w0 {self.w0_first:g}/{self.w0:g})"
