"""Evaluate a coordinate network over many coordinates without holding all activations."""

from __future__ import annotations

import torch
from torch import nn

RENDER_CHUNK = 1 << 15


@torch.no_grad()
def render(model: nn.Module, coords: torch.Tensor, *, chunk: int = RENDER_CHUNK) -> torch.Tensor:
    """model(coords) computed in chunks; chunks keep activations in cache and memory flat."""
    outputs = [model(coords[start : start + chunk]) for start in range(0, coords.shape[0], chunk)]
    return torch.cat(outputs) if outputs else coords.new_zeros((0, 0))
