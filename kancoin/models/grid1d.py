"""Latent grids on the time axis for sound (model id 20): the grid family in one dimension.

The image grid's machinery as it is (kancoin.models.grid, kancoin.latents,
kancoin.fit.grid_trainer, kancoin.grid_codec), on a grid one row high: `levels` latent rows
from the clip's sample rate down by factors of two, interpolated at continuous times (so any
output sample rate renders), a small per-sample synthesis network, the integer context
model. One model codes the whole clip: no segments, so no segment boundaries to click.
The header holds the clip's length in frames as `width` (32 bits: an image grid's 16 would
stop at 4 s of 16 kHz audio).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import ClassVar

import torch

from kancoin.models.base import HeaderField
from kancoin.models.grid import ACTIVATIONS, UPSAMPLING, GridModel, GridSpec


@dataclass(frozen=True)
class Grid1DSpec(GridSpec):
    model_id: ClassVar[int] = 20
    name: ClassVar[str] = "grid1d"
    time_axis_only: ClassVar[bool] = True
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        HeaderField("width", "uint:32", 1, (1 << 32) - 1),
        HeaderField("levels", "uint:4", 1, 15),
        HeaderField("hidden", "uint:8", 1, 255),
        HeaderField("hidden_layers", "uint:3", 0, 7),
        HeaderField("activation", "uint:2", 0, len(ACTIVATIONS) - 1),
        HeaderField("upsampling", "uint:2", 0, 1),
        HeaderField("context_hidden", "uint:6", 0, 63),
    )

    levels: int = 12  # 1/1 .. 1/2048 of the sample rate (docs/AUDIO.md)

    @classmethod
    def own_codec(cls):
        from kancoin import grid1d_codec

        return grid1d_codec

    def describe(self) -> str:
        return "1-D " + super().describe()

    def build(self) -> Grid1DModel:
        return Grid1DModel(self)


CUBIC_A = -0.75  # torch's bicubic kernel (F.interpolate, F.grid_sample)


def _cubic_weights(t: torch.Tensor) -> torch.Tensor:
    """The 4 taps' weights (at offsets -1, 0, 1, 2) of cubic convolution at fraction t."""
    a = CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=-1)


class Grid1DModel(GridModel):
    """A one-row grid read at audio time coordinates."""

    def upsample_full(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Every level at every frame (frames, levels), as the parent's F.interpolate
        computes it but in one dimension: bicubic on a one-row grid reads four identical
        rows, so this does a quarter of the work (training's upsampling was 40 % of a step)."""
        if UPSAMPLING[self.spec.upsampling] != "bicubic":
            return super().upsample_full(levels)
        width = self.spec.width
        columns = []
        for level in levels:
            row = level.reshape(-1)
            if row.numel() == width:
                columns.append(row)
                continue
            taps, weights = _taps(width, row.numel(), row.device)
            columns.append((row[taps] * weights.to(row.dtype)).sum(dim=1))
        return torch.stack(columns, dim=1)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """(N, 1) times in the clip's coordinate x = 2 k / frames - 1 (kancoin.audio, one
        segment) -> (N, channels). Sample k's centre on the grid is x + 1 / frames."""
        x = coords[:, :1] + 1.0 / self.spec.width
        return super().forward(torch.cat([torch.zeros_like(x), x], dim=1))


@cache
def _taps_cpu(width: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(width, 4) source indices (clamped: border padding) and cubic weights for reading a
    row of `size` latents at `width` frame centres (align_corners=False: the scale is
    size / width, as F.interpolate takes it, not 1 / factor)."""
    position = (torch.arange(width, dtype=torch.float64) + 0.5) * (size / width) - 0.5
    base = torch.floor(position)
    weights = _cubic_weights(position - base).to(torch.float32)
    offsets = torch.arange(-1, 3, dtype=torch.int64)
    taps = (base.to(torch.int64)[:, None] + offsets).clamp_(0, size - 1)
    return taps, weights


def _taps(width: int, size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    taps, weights = _taps_cpu(width, size)
    return taps.to(device), weights.to(device)
