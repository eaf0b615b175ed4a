"""Input encodings of coordinates for coordinate MLPs (no coded parameters).

- `positional`: NeRF's encoding, x, sin(2^k pi x), cos(2^k pi x) for k < octaves.
- `random_fourier`: Tancik et al.'s (2020) random Fourier features, cos(2 pi B x) and
  sin(2 pi B x) with B ~ N(0, sigma^2); B is regenerated from (seed, sigma) in the header.

B comes from PCG64's raw 64-bit integers (a fixed algorithm: numpy never changes a bit
generator's stream) through Box-Muller in float64, so every machine and numpy version
rebuilds the same matrix up to an ulp of libm's log and cos, far below float32 rounding.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def positional(coords: torch.Tensor, scales: torch.Tensor, *, keep_input: bool = True):
    """(N, d) -> (N, d (1 + 2L)): the coordinates, then sines and cosines at `scales`."""
    angles = (coords.unsqueeze(-1) * scales.to(coords.dtype)).flatten(1)
    parts = [coords] if keep_input else []
    return torch.cat([*parts, torch.sin(angles), torch.cos(angles)], dim=1)


def octave_scales(octaves: int) -> torch.Tensor:
    return math.pi * 2.0 ** torch.arange(octaves, dtype=torch.float32)


def gaussian_matrix(rows: int, cols: int, sigma: float, seed: int) -> torch.Tensor:
    """A (rows, cols) float32 matrix of N(0, sigma^2) draws, the same on every machine."""
    count = rows * cols
    raw = np.random.PCG64(seed).random_raw(2 * count).astype(np.uint64)
    unit = 2.0**-53
    first = ((raw[0::2] >> np.uint64(11)).astype(np.float64) + 1.0) * unit  # (0, 1]
    second = (raw[1::2] >> np.uint64(11)).astype(np.float64) * unit  # [0, 1)
    normal = np.sqrt(-2.0 * np.log(first)) * np.cos(2.0 * np.pi * second)
    return torch.from_numpy((sigma * normal).reshape(rows, cols).astype(np.float32))


def random_fourier(coords: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """(N, d) -> (N, 2m): cos and sin of 2 pi B x for the (m, d) matrix B."""
    angles = (2.0 * math.pi) * (coords @ matrix.to(coords.dtype).t())
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
