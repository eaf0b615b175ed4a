"""Latent grids + a per-pixel synthesis network (Cool-chic's ICCV design), model id 4.

Levels of one-channel latent grids, from the image's resolution down by factors of two, are
interpolated at continuous coordinates (so any output size renders) and a small per-pixel
network maps the `levels` interpolated values to the channels. The latents are integers in
the file; their entropy model is kancoin.latents. The family trains and codes its own
payload (kancoin.grid_codec) instead of the shared per-tensor path.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from kancoin.latents import LAYOUTS, ContextNet
from kancoin.models import grid_kan
from kancoin.models.base import HeaderField, ModelSpec
from kancoin.models.network import CodedModel

# "kan": B-spline KAN layers after a linear first layer (kancoin.models.grid_kan)
ACTIVATIONS = ("relu", "gelu", "sine", "kan")
# "cascade": Cool-chic's (fixed, bilinear) upsampling: each level doubled step by step to
# the reference grid, then sampled bilinearly at any coordinates (model id 22 only)
UPSAMPLING = ("bilinear", "bicubic", "cascade")
SINE_W0 = 30.0
# (synthesis width, context width) from large to small, for sizing to a budget
SIZE_LADDER = ((16, 16), (12, 8), (8, 8), (8, 0))
NETWORK_SHARE = 0.1  # first synthesis layer's frequency factor when activation is sine


@dataclass(frozen=True)
class GridSpec(ModelSpec):
    model_id: ClassVar[int] = 4
    name: ClassVar[str] = "grid-checkerboard"
    fine_tunes_quantized: ClassVar[bool] = False
    bits_per_param: ClassVar[float] = 9.0  # the networks' weights; latents apart
    time_axis_only: ClassVar[bool] = False  # one row on the time axis (Grid1DSpec)
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        HeaderField("height", "uint:16", 1, 65535),
        HeaderField("width", "uint:16", 1, 65535),
        HeaderField("levels", "uint:4", 1, 12),
        HeaderField("hidden", "uint:8", 1, 255),
        HeaderField("hidden_layers", "uint:3", 0, 7),
        HeaderField("activation", "uint:2", 0, len(ACTIVATIONS) - 1),
        HeaderField("upsampling", "uint:2", 0, 1),
        HeaderField("context_hidden", "uint:6", 0, 63),
    )
    context_layout: ClassVar[str] = "checkerboard"  # kancoin.latents.LAYOUTS
    # GridFitConfig fields this family trains with (kancoin.grid_codec applies them)
    fit_defaults: ClassVar[dict] = {}
    lambda_at_03: ClassVar[float] = 0.005  # the first lambda for latents at 0.3 bpp
    # full-image steps per preset (kancoin.grid_codec; x 4/3 with the finest level frozen)
    preset_steps: ClassVar[dict] = {"fast": 300, "default": 700, "best": 3000}
    freezes_finest: ClassVar[bool] = True  # at low rates (kancoin.grid_codec.FREEZE_MAX_BPP)
    repairs_rate: ClassVar[bool] = False  # over the budget: train on (grid_codec._repair_rate)

    height: int = 1  # the latent geometry's reference size: the encoded image's
    width: int = 1
    levels: int = 7
    hidden: int = 16
    hidden_layers: int = 2
    activation: int = 0  # index into ACTIVATIONS
    upsampling: int = 1  # index into UPSAMPLING: bicubic (+0.3 dB over bilinear, GRID.md)
    context_hidden: int = 16  # 0: the factorized model (a mean and scale per level)

    @classmethod
    def own_codec(cls):
        from kancoin import grid_codec

        return grid_codec

    def size_for(
        self,
        budget_bits: float,
        *,
        overhead_bits=None,
        bits_per_param: float | None = None,
        max_layers: int | None = None,
        networks: int = 1,
    ) -> GridSpec:
        """The model contract's sizing hook: the networks' share of the budget decides
        (`size_for_budget`); depth is not searched, so max_layers does not apply."""
        return self.size_for_budget(budget_bits, bits_per_param or self.bits_per_param)

    def size_for_budget(self, budget_bits: float | None, bits_per_weight: float) -> GridSpec:
        """The largest networks of SIZE_LADDER whose weights take at most NETWORK_SHARE
        of the budget (the smallest when none does): latents should carry the rate."""
        if budget_bits is None:
            return self
        spec = self
        for hidden, context_hidden in SIZE_LADDER:
            spec = self.replace(hidden=hidden, context_hidden=context_hidden)
            if bits_per_weight * spec.num_network_params() <= NETWORK_SHARE * budget_bits:
                return spec
        return spec

    def num_network_params(self) -> int:
        return super().num_params()

    def level_shapes(self) -> list[tuple[int, int]]:
        """(h, w) of each latent level, finest first: ceil(size / 2^l)."""
        return [
            (-(-self.height // (1 << level)), -(-self.width // (1 << level)))
            for level in range(self.levels)
        ]

    def synthesis_dims(self) -> list[int]:
        return [self.levels] + [self.hidden] * self.hidden_layers + [self.out_features]

    def synthesis_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """The synthesis' coded tensors, its first layer's weight first."""
        dims = self.synthesis_dims()
        if self.kan:
            return grid_kan.synthesis_shapes(dims)
        shapes = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
            shapes += [(f"synth{i}.weight", (fan_out, fan_in)), (f"synth{i}.bias", (fan_out,))]
        return shapes

    @property
    def kan(self) -> bool:
        return ACTIVATIONS[self.activation] == "kan"

    def tensor_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """The networks' coded tensors (synthesis, then context model); latents apart."""
        shapes = self.synthesis_shapes()
        shapes.append(("context.level_bias", (self.levels, 2)))
        if self.context_hidden:
            c = self.context_hidden
            shapes += [
                ("context.w1", (c, LAYOUTS[self.context_layout].features)),
                ("context.b1", (c,)),
                ("context.w2", (2, c)),
                ("context.b2", (2,)),
            ]
        return shapes

    def num_latents(self) -> int:
        return sum(h * w for h, w in self.level_shapes())

    def num_params(self) -> int:
        return super().num_params() + self.num_latents()

    def macs_per_pixel(self) -> int:
        """Multiplications per output pixel to decode: interpolation, synthesis, context."""
        dims = self.synthesis_dims()
        mode = UPSAMPLING[self.upsampling]
        if mode == "cascade":  # a 2x bilinear step per level below: 4 taps per output value
            taps = sum(4 * (self.levels - 1 - k) / 4**k for k in range(self.levels - 1))
            interpolation = taps + 4 * self.levels  # then sampled at the output's coordinates
        else:
            interpolation = (4 if mode == "bilinear" else 16) * self.levels
        synthesis = (
            grid_kan.synthesis_macs(dims)
            if self.kan
            else sum(a * b for a, b in itertools.pairwise(dims))
        )
        context = self.context_hidden * (LAYOUTS[self.context_layout].features + 2)
        per_latent = self.num_latents() / max(1, self.height * self.width)
        return round(interpolation + synthesis + context * per_latent)

    def describe(self) -> str:
        context = f"context {self.context_hidden}" if self.context_hidden else "factorized"
        if self.context_layout != "checkerboard":
            context = f"{self.context_layout} {context}"
        return (
            f"grid {self.levels} levels {UPSAMPLING[self.upsampling]}, synthesis "
            f"{'-'.join(map(str, self.synthesis_dims()))} {ACTIVATIONS[self.activation]}, "
            f"{context}"
        )

    def build(self) -> nn.Module:
        return GridModel(self)


class GridModel(CodedModel):
    """Latents, synthesis and the float twin of the context model."""

    def __init__(self, spec: GridSpec):
        super().__init__()
        self.spec = spec
        self.latents = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1, h, w)) for h, w in spec.level_shapes()
        )
        dims = spec.synthesis_dims()
        if spec.kan and len(dims) > 2:
            self.synthesis = grid_kan.KanSynthesis(dims)
        else:
            self.synthesis = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        if ACTIVATIONS[spec.activation] == "sine":
            with torch.no_grad():
                for i, layer in enumerate(self.synthesis):
                    bound = 1 / dims[i] if i == 0 else math.sqrt(6 / dims[i]) / SINE_W0
                    layer.weight.uniform_(-bound, bound)
        self.context = ContextNet(spec.levels, spec.context_hidden, LAYOUTS[spec.context_layout])

    def coded_tensors(self) -> list[torch.Tensor]:
        return self.synthesis_tensors() + self.context.coded_tensors()

    def synthesis_tensors(self) -> list[torch.Tensor]:
        """The synthesis' coded tensors (spec.synthesis_shapes' order)."""
        if isinstance(self.synthesis, grid_kan.KanSynthesis):
            return self.synthesis.coded_tensors()
        out = []
        for layer in self.synthesis:
            out += [layer.weight, layer.bias]
        return out

    @torch.no_grad()
    def init_output(self, mean: torch.Tensor) -> None:
        if isinstance(self.synthesis, grid_kan.KanSynthesis):
            self.synthesis.init_output(mean)
        else:
            self.synthesis[-1].bias.copy_(mean)

    def network_parameters(self) -> list[nn.Parameter]:
        return list(self.synthesis.parameters()) + list(self.context.parameters())

    def synthesize(self, features: torch.Tensor) -> torch.Tensor:
        """(N, levels) interpolated latents -> (N, channels)."""
        return self.synthesize_with(self.synthesis_tensors(), features)

    def synthesize_with(self, tensors: list[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        """The synthesis with these tensors in place of its own (synthesis_tensors' order):
        how the writer evaluates quantized weights."""
        if isinstance(self.synthesis, grid_kan.KanSynthesis):
            return self.synthesis.forward_with(tensors, features)
        kind = ACTIVATIONS[self.spec.activation]
        h = features
        last = len(tensors) // 2 - 1
        for i in range(last + 1):
            h = F.linear(h, tensors[2 * i], tensors[2 * i + 1])
            if i == last:
                break
            if kind == "relu":
                h = torch.relu(h)
            elif kind == "gelu":
                h = F.gelu(h)
            else:
                h = torch.sin(SINE_W0 * h)
        return h

    def sample(self, levels: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        """Each level interpolated at (y, x) coordinates in (-1, 1): (N, levels).

        Pixel centres of the reference size land on `F.interpolate`'s sample points
        (align_corners=False), so training on the full grid and decoding agree.
        """
        grid = coords.flip(-1).reshape(1, 1, -1, 2).to(levels[0].dtype)
        mode = UPSAMPLING[self.spec.upsampling]
        if mode == "cascade":
            sampled = F.grid_sample(
                self._cascade(levels),
                grid,
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )
            return sampled.reshape(len(levels), -1).t()
        columns = [
            F.grid_sample(level, grid, mode=mode, padding_mode="border", align_corners=False)
            for level in levels
        ]
        return torch.cat(columns, dim=1).reshape(len(levels), -1).t()

    def upsample_full(self, levels: list[torch.Tensor], zero: int = 0) -> torch.Tensor:
        """Every level at every pixel of the reference size: (height * width, levels).

        The first `zero` levels are known to be zero (training with the finest frozen)."""
        size = (self.spec.height, self.spec.width)
        mode = UPSAMPLING[self.spec.upsampling]
        if mode == "cascade":
            return self._cascade(levels).reshape(len(levels), -1).t()
        blank = levels[0].new_zeros(1, 1, *size)
        columns = [
            blank if i < zero else F.interpolate(level, size=size, mode=mode, align_corners=False)
            for i, level in enumerate(levels)
        ]
        return torch.cat(columns, dim=1).reshape(len(levels), -1).t()

    def _cascade(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """(1, levels, height, width): the coarsest level doubled (bilinear) to the next
        level's size, stacked under it, and so on to the reference grid (Cool-chic's
        upsampling with its filters fixed; +0.1 to +0.3 dB over direct bicubic, GRID.md)."""
        shapes = self.spec.level_shapes()
        stack = levels[-1]
        for index in range(len(levels) - 2, -1, -1):
            up = F.interpolate(stack, size=shapes[index], mode="bilinear", align_corners=False)
            stack = torch.cat([levels[index], up], dim=1)
        return stack

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.synthesize(self.sample(list(self.latents), coords))


@dataclass(frozen=True)
class RasterGridSpec(GridSpec):
    """The latent grid with Cool-chic's entropy model and upsampling (model id 22): each
    latent's context is its 8 causal neighbours (decoded in wavefronts), the levels are
    upsampled by a bilinear cascade, and training follows Cool-chic's schedule. Measured
    against model id 4 in docs/GRID.md ("Fifth session")."""

    model_id: ClassVar[int] = 22
    name: ClassVar[str] = "grid"
    header_fields: ClassVar[tuple[HeaderField, ...]] = tuple(
        HeaderField("upsampling", "uint:2", 0, len(UPSAMPLING) - 1) if f.name == "upsampling" else f
        for f in GridSpec.header_fields
    )
    context_layout: ClassVar[str] = "raster"
    lambda_at_03: ClassVar[float] = 0.001  # lands at 98.6 % of kodim15's budget (GRID.md)
    # 1400: +0.28 dB over 933 on kodim15, inside 5 minutes on 2 cores (docs/GRID.md)
    preset_steps: ClassVar[dict] = {"fast": 400, "default": 1400, "best": 4000}
    freezes_finest: ClassVar[bool] = False  # its finest level pays (+1.1 dB on kodim15)
    repairs_rate: ClassVar[bool] = True  # its latents sit on integers: no re-quantizing
    fit_defaults: ClassVar[dict] = {
        "temperature": (0.35, 0.08),
        "gaussian_noise": (0.22, 0.15),
        "lr_latents": 0.16,
        "latent_gain": 1.0,
        "ste_share": 0.0,
        "warm_rate_share": 1.0,  # the first lambda per image (docs/GRID.md, seventh session)
    }

    upsampling: int = 2  # cascade
