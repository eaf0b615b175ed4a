"""The ReLU MLP networks (relu, relu-pe, ffn). Their specs (header fields, size and cost;
no torch) and the reasoning: kancoin.models.relu."""

from __future__ import annotations

import math

import torch

from kancoin.models.nets import encodings
from kancoin.models.nets.siren import Siren, center_output
from kancoin.models.relu import FfnSpec, ReluPeSpec
from kancoin.models.siren import SirenSpec


class ReluMlp(Siren):
    def __init__(self, spec: SirenSpec):
        super().__init__(spec, activation=torch.relu)

    def weight_bound(self, layer: int, in_dim: int) -> float:
        return 1.0 / math.sqrt(in_dim)  # nn.Linear's default

    def frequencies(self) -> list[float]:
        return [1.0] * self.spec.layers

    def init_output(self, mean: torch.Tensor) -> None:
        center_output(self, mean)  # ReLU features are non-negative: the output is offset


class ReluPeMlp(ReluMlp):
    def __init__(self, spec: ReluPeSpec):
        super().__init__(spec)
        self.register_buffer("scales", encodings.octave_scales(spec.octaves), False)

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        return encodings.positional(coords, self.scales)


class FfnMlp(ReluMlp):
    def __init__(self, spec: FfnSpec):
        super().__init__(spec)
        matrix = encodings.gaussian_matrix(spec.features, spec.in_features, spec.sigma, spec.seed)
        self.register_buffer("matrix", matrix, False)

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        return encodings.random_fourier(coords, self.matrix)
