"""The Gaussian-activation MLP network. Its spec (header fields, size and cost; no torch) and the
reasoning behind it: kancoin.models.gauss."""

from __future__ import annotations

import math

import torch

from kancoin.models.gauss import GaussSpec
from kancoin.models.nets.siren import Siren, center_output


def gaussian(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-z.square())


class GaussMlp(Siren):
    def __init__(self, spec: GaussSpec):
        super().__init__(spec, activation=gaussian)

    def weight_bound(self, layer: int, in_dim: int) -> float:
        return 1.0 / math.sqrt(in_dim)  # nn.Linear's default (Kaiming uniform, a = sqrt(5))

    def frequencies(self) -> list[float]:
        return [self.spec.scale] * self.spec.layers

    def init_output(self, mean: torch.Tensor) -> None:
        center_output(self, mean)  # Gaussian features are positive: the output is offset
