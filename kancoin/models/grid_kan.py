"""The latent grid's KAN synthesis (`activation` "kan", docs/GRID.md).

The per-pixel synthesis `levels -> hidden -> ... -> channels` with B-spline KAN layers
(kancoin.models.nets.kan.KANLinear) in place of ReLU + linear: the first layer stays linear
(with a bias), so the rate loop can still fold the latents' quantization step into it, and
its output is squashed into the splines' grid by r tanh(h / r), as between KAN layers. The
grid (G intervals, order k, range r) is a constant of the format, like the sine's w0: the
header's activation field is all a reader needs. A KAN layer has no bias: its bases sum to
one inside the grid, so raising an edge's coefficients raises the output (init_output).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional

from kancoin.models.nets.kan import KANLinear, bspline_bases

KAN_GRID = 3  # intervals of the splines' grid
KAN_ORDER = 3  # cubic B-splines: G + k = 6 coefficients per edge
KAN_RANGE = 1.0  # the grid spans [-r, r]; hidden values are squashed into it
KAN_SPLINE_INIT = 0.1  # std of the initial coefficients (kancoin's KAN default)


def synthesis_shapes(dims: list[int]) -> list[tuple[str, tuple[int, ...]]]:
    """Coded tensors: the first layer's weight and bias, then per KAN layer its base
    weights, spline coefficients and per-edge scalers (out*in*(G + k + 2) numbers)."""
    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("synth0.weight", (dims[1], dims[0])),
        ("synth0.bias", (dims[1],)),
    ]
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(dims[1:]), start=1):
        shapes += [
            (f"synth{i}.base", (fan_out, fan_in)),
            (f"synth{i}.spline", (fan_out, fan_in, KAN_GRID + KAN_ORDER)),
            (f"synth{i}.scaler", (fan_out, fan_in)),
        ]
    return shapes


def synthesis_macs(dims: list[int]) -> int:
    """Multiplications per pixel: the linear layer, then per KAN edge its G + k + 1
    products, and per KAN input the basis (about 4 (k + 1)^2 operations) and the SiLU."""
    macs = dims[0] * dims[1]
    k1 = KAN_ORDER + 1
    for fan_in, fan_out in itertools.pairwise(dims[1:]):
        macs += fan_out * fan_in * (KAN_GRID + KAN_ORDER + 1) + fan_in * (4 * k1 * k1 + 4)
    return macs


class KanSynthesis(nn.Module):
    """Linear, then KAN layers, with the bounded squash before each KAN layer."""

    def __init__(self, dims: list[int]):
        super().__init__()
        self.first = nn.Linear(dims[0], dims[1])
        self.layers = nn.ModuleList(
            KANLinear(
                fan_in,
                fan_out,
                grid_size=KAN_GRID,
                spline_order=KAN_ORDER,
                grid_range=KAN_RANGE,
                spline_init=KAN_SPLINE_INIT,
            )
            for fan_in, fan_out in itertools.pairwise(dims[1:])
        )

    def coded_tensors(self) -> list[torch.Tensor]:
        out = [self.first.weight, self.first.bias]
        for layer in self.layers:
            out += [layer.base_weight, layer.spline_weight, layer.spline_scaler]
        return out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.forward_with(self.coded_tensors(), features)

    @staticmethod
    def forward_with(tensors: list[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        """The synthesis with these tensors (coded_tensors' order): what the writer
        evaluates with the quantized weights."""
        h = functional.linear(features, tensors[0], tensors[1])
        for i in range(2, len(tensors), 3):
            base, spline, scaler = tensors[i : i + 3]
            h = KAN_RANGE * torch.tanh(h / KAN_RANGE)
            bases = bspline_bases(h, KAN_GRID, KAN_ORDER, KAN_RANGE)
            coefficients = (spline * scaler.unsqueeze(-1)).flatten(-2)
            h = functional.linear(functional.silu(h), base) + functional.linear(
                bases.flatten(-2), coefficients
            )
        return h

    @torch.no_grad()
    def init_output(self, mean: torch.Tensor) -> None:
        """Move the output onto `mean` where the features are zero (the latents' start):
        every input of a layer is then constant, so shifting all coefficients of edge
        (o, i) by d moves output o by scaler[o, i] d; the smallest such shift is used."""
        if not self.layers:
            self.first.bias.copy_(mean)
            return
        last = self.layers[-1]
        current = self(mean.new_zeros(1, self.first.in_features))[0]
        scaler = last.spline_scaler  # (out, in)
        shift = (mean - current) / scaler.pow(2).sum(dim=1).clamp_min(1e-12)
        last.spline_weight.add_((shift.unsqueeze(1) * scaler).unsqueeze(-1))
