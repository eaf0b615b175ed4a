"""WIRE (Saragadam et al., CVPR 2023) with the real Gabor wavelet:
h = cos(w0 z) exp(-(s0 z)^2), z = W h + b, per hidden layer, then a linear output.

One pre-activation feeds both terms (the paper's psi(x) = cos(w0 x) exp(-(s0 x)^2)); the
authors' RealGaborLayer uses a second linear map for the Gaussian term, twice the weights
per layer, which at equal parameters buys a narrower network. Initialisation as theirs:
PyTorch's default uniform. w0 and s0 (their defaults 10 and 10) are in the header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from kancoin.models.base import HeaderField
from kancoin.models.siren import SirenSpec

if TYPE_CHECKING:
    from kancoin.models.network import CodedModel


@dataclass(frozen=True)
class WireSpec(SirenSpec):
    """`layers` Gabor layers of `width` units, then one linear layer."""

    model_id: ClassVar[int] = 6
    name: ClassVar[str] = "wire"
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        HeaderField("layers", "uint:6", 1, 63),
        HeaderField("width", "uint:12", 1, 4095),
        HeaderField("omega", "floatbe:32", 1e-3, 1e6),
        HeaderField("sigma", "floatbe:32", 1e-3, 1e6),
    )

    # Gabor features of Gabor features vanish with depth at PyTorch's initialisation: a 6x27
    # WIRE stayed at the mean image (10.6 dB on half-size kodim15, 200 steps), 3x36 reached
    # 20.3 dB; the WIRE code's image scripts use 2-3 hidden layers
    plan_max_layers: ClassVar[int | None] = 3
    lr_scale: ClassVar[float] = 3.0  # 3x36 at 1x: 20.3 dB; 3x42 at 3x: 22.2 (docs/ZOO.md)

    omega: float = 10.0
    sigma: float = 10.0

    def build(self) -> CodedModel:
        from kancoin.models.nets.wire import WireMlp

        return WireMlp(self)

    def describe(self) -> str:
        return f"wire {self.layers}x{self.width} (w0 {self.omega:g}, s0 {self.sigma:g})"
