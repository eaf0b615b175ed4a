"""ReLU coordinate MLPs: plain (the spectral-bias baseline), on NeRF's positional encoding
(relu-pe, the NeRF MLP), and on random Fourier features (ffn, Tancik et al. 2020).

PyTorch's default initialisation (as the NeRF and FFN reference code's dense layers: uniform,
scaled by fan-in). The encodings have no coded parameters: octaves, or the feature count,
the Gaussian scale sigma and the seed of B, are in the header (kancoin.models.nets.encodings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from kancoin.models.base import HeaderField, ModelSpec
from kancoin.models.siren import SirenSpec

if TYPE_CHECKING:
    from kancoin.models.network import CodedModel

SHAPE_FIELDS = (
    HeaderField("layers", "uint:6", 1, 63),
    HeaderField("width", "uint:12", 1, 4095),
)
# the sine families' first-layer w0 of 30 (images) corresponds to these encodings' settings;
# a signal kind asking for another w0 (audio: hundreds) scales them alike (for_first_frequency)
IMAGE_W0 = 30.0


@dataclass(frozen=True)
class ReluSpec(SirenSpec):
    """`layers` ReLU layers of `width` units on the raw coordinates, then one linear layer."""

    model_id: ClassVar[int] = 8
    name: ClassVar[str] = "relu"
    header_fields: ClassVar[tuple[HeaderField, ...]] = SHAPE_FIELDS
    # 3x SIREN's rate: +2.1 (relu), +2.6 (relu-pe), +2.1 dB (ffn) on half-size kodim15 at
    # 200 steps and 4000 parameters (docs/ZOO.md)
    lr_scale: ClassVar[float] = 3.0

    def build(self) -> CodedModel:
        from kancoin.models.nets.relu import ReluMlp

        return ReluMlp(self)

    def describe(self) -> str:
        return f"relu {self.layers}x{self.width}"


@dataclass(frozen=True)
class ReluPeSpec(ReluSpec):
    """A ReLU MLP on `octaves` octaves of NeRF's positional encoding per axis."""

    model_id: ClassVar[int] = 9
    name: ClassVar[str] = "relu-pe"
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        *SHAPE_FIELDS,
        HeaderField("octaves", "uint:4", 1, 15),
    )

    octaves: int = 8

    def build(self) -> CodedModel:
        from kancoin.models.nets.relu import ReluPeMlp

        return ReluPeMlp(self)

    def input_width(self) -> int:
        return self.in_features * (1 + 2 * self.octaves)

    def for_first_frequency(self, w0_first: float) -> ModelSpec:
        """One more octave per doubling of the sine families' first w0 (8 at w0 = 30)."""
        octaves = self.octaves + round(math.log2(w0_first / IMAGE_W0))
        return self.replace(octaves=min(15, max(1, octaves)))

    def describe(self) -> str:
        return f"relu-pe {self.layers}x{self.width} ({self.octaves} octaves)"


@dataclass(frozen=True)
class FfnSpec(ReluSpec):
    """A ReLU MLP on `features` random Fourier features, B ~ N(0, sigma^2) from `seed`.

    Tancik et al. use 256 features and sigma = 10 on coordinates in [0, 1]; on kancoin's
    [-1, 1] that is sigma = 5. 64 features keep the first layer affordable at codec rates
    (2 x 64 inputs per unit).
    """

    model_id: ClassVar[int] = 10
    name: ClassVar[str] = "ffn"
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        *SHAPE_FIELDS,
        HeaderField("features", "uint:12", 1, 4095),
        HeaderField("sigma", "floatbe:32", 1e-3, 1e6),
        HeaderField("seed", "uint:32", 0, 2**32 - 1),
    )

    features: int = 64
    sigma: float = 5.0
    seed: int = 0

    def build(self) -> CodedModel:
        from kancoin.models.nets.relu import FfnMlp

        return FfnMlp(self)

    def input_width(self) -> int:
        return 2 * self.features

    def for_first_frequency(self, w0_first: float) -> ModelSpec:
        return self.replace(sigma=self.sigma * w0_first / IMAGE_W0)

    def describe(self) -> str:
        return (
            f"ffn {self.layers}x{self.width} ({self.features} features, "
            f"sigma {self.sigma:g}, seed {self.seed})"
        )
