"""The SIREN network, also the coordinate MLP the other activation families build on. Its
spec (header fields, size and cost; no torch) and the reasoning: kancoin.models.siren."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from kancoin.kernels import sin_, use_native
from kancoin.models.network import CodedModel
from kancoin.models.siren import SirenSpec

Activation = Callable[[torch.Tensor], torch.Tensor]


class Siren(CodedModel):
    """h = activation(w0 (W h + b)) per hidden layer, then a linear output. Weights are kept
    as plain parameter lists so fast steps can address them directly."""

    def __init__(self, spec: SirenSpec, activation: Activation = torch.sin):
        super().__init__()
        self.spec = spec
        self.activation = activation
        shapes = spec.tensor_shapes()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(0, len(shapes), 2):
            out_dim, in_dim = shapes[i][1]
            weight = torch.empty(out_dim, in_dim)
            bound = self.weight_bound(i // 2, in_dim)
            nn.init.uniform_(weight, -bound, bound)
            bias = torch.empty(out_dim)
            nn.init.uniform_(bias, -1.0 / math.sqrt(in_dim), 1.0 / math.sqrt(in_dim))
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(bias))
        self.frozen = 0  # leading layers a cohort prior supplies: neither trained nor coded

    def freeze(self, layers: int) -> None:
        """Stop training and coding the first `layers` layers (kancoin.prior)."""
        if not 0 <= layers < len(self.weights):
            raise ValueError(f"cannot freeze {layers} of {len(self.weights)} layers")
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            weight.requires_grad_(index >= layers)
            bias.requires_grad_(index >= layers)
        self.frozen = layers

    def weight_bound(self, layer: int, in_dim: int) -> float:
        """Initial weights are U(-bound, bound). SIREN's: the first layer spans the input;
        later ones keep sin's input ~U(-1, 1)."""
        return 1.0 / in_dim if layer == 0 else math.sqrt(6.0 / in_dim) / self.spec.w0

    def frequencies(self) -> list[float]:
        """The w0 each sine layer multiplies its pre-activation by."""
        return [self.spec.w0_first] + [self.spec.w0] * (self.spec.layers - 1)

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """What the first layer reads; every path (forward, fast step, render) goes through it."""
        return coords

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = self.encode(coords)
        last = len(self.weights) - 1
        for i, (weight, bias, w0) in enumerate(
            zip(self.weights, self.biases, [*self.frequencies(), 1.0], strict=True)
        ):
            h = torch.addmm(bias, h, weight.t())
            if i < last:
                h = self.activation(w0 * h)
        return h

    def step_kind(self) -> str | None:
        return "siren" if self.activation is torch.sin else None

    def native_forward(self, coords: torch.Tensor):
        """The forward with the C sine kernel (kancoin.kernels), where it is built."""
        if self.activation is not torch.sin or not use_native("auto", coords):
            return None
        weights = [w.detach() for w in self.weights]
        biases = [b.detach() for b in self.biases]
        frequencies = self.frequencies()

        def forward(x: torch.Tensor) -> torch.Tensor:
            h = self.encode(x)
            for weight, bias, w0 in zip(weights, biases, frequencies, strict=False):
                h = torch.addmm(bias, h, weight.t(), beta=w0, alpha=w0)  # w0 (h W^T + b)
                sin_(h, native=True)
            return torch.addmm(biases[-1], h, weights[-1].t())

        return forward

    @torch.no_grad()
    def init_output(self, mean: torch.Tensor) -> None:
        """Start from the signal's mean: otherwise the first hundreds of steps only move
        the output bias from 0 towards it."""
        self.biases[-1].copy_(mean)

    def coded_tensors(self) -> list[nn.Parameter]:
        """Every layer's weight and bias, less the layers a prior supplies (`freeze`)."""
        return self.all_tensors()[2 * self.frozen :]

    def all_tensors(self) -> list[nn.Parameter]:
        """Every layer's weight and bias, frozen ones included."""
        out = []
        for weight, bias in zip(self.weights, self.biases, strict=True):
            out += [weight, bias]
        return out


@torch.no_grad()
def center_output(model: Siren, mean: torch.Tensor) -> None:
    """Start the output at the signal's mean for activations whose features do not average
    out (ReLU, Gaussian, Gabor: mostly positive), where setting the output bias to the mean
    leaves the output layer's own offset: that offset is measured over a coarse grid of
    coordinates and taken off the bias."""
    axis = torch.linspace(-1.0, 1.0, 17, device=model.biases[-1].device)
    axes = torch.meshgrid(*[axis] * model.spec.in_features, indexing="ij")
    grid = torch.stack(axes, dim=-1).reshape(-1, model.spec.in_features)
    model.biases[-1].add_(mean.to(grid) - model(grid).mean(dim=0))
