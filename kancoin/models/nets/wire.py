"""The WIRE (Gabor) MLP network. Its spec (header fields, size and cost; no torch) and the
reasoning behind it: kancoin.models.wire."""

from __future__ import annotations

import math

import torch

from kancoin.models.nets.siren import Siren, center_output
from kancoin.models.wire import WireSpec


class WireMlp(Siren):
    def __init__(self, spec: WireSpec):
        omega, sigma = spec.omega, spec.sigma

        def gabor(z: torch.Tensor) -> torch.Tensor:
            return torch.cos(omega * z) * torch.exp(-(sigma * z).square())

        super().__init__(spec, activation=gabor)

    def weight_bound(self, layer: int, in_dim: int) -> float:
        return 1.0 / math.sqrt(in_dim)  # nn.Linear's default

    def frequencies(self) -> list[float]:
        return [1.0] * self.spec.layers  # the activation applies w0 and s0 itself

    def init_output(self, mean: torch.Tensor) -> None:
        center_output(self, mean)  # a Gabor feature starts near 1, not around 0
