"""The FINER MLP network. Its spec (header fields, size and cost; no torch) and the
reasoning behind it: kancoin.models.finer."""

from __future__ import annotations

import torch

from kancoin.models.finer import FIRST_BIAS_SCALE, FinerSpec
from kancoin.models.nets.siren import Siren


def variable_periodic(z: torch.Tensor, w0: float) -> torch.Tensor:
    """sin(w0 (|z| + 1) z), the factor held constant for the gradient."""
    return torch.sin(w0 * (z.detach().abs() + 1.0) * z)


class FinerMlp(Siren):
    def __init__(self, spec: FinerSpec):
        super().__init__(spec, activation=variable_periodic)
        with torch.no_grad():
            self.biases[0].uniform_(-FIRST_BIAS_SCALE, FIRST_BIAS_SCALE)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = self.encode(coords)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.addmm(bias, h, weight.t())
            if i < last:
                h = variable_periodic(h, self.frequencies()[i])
        return h
