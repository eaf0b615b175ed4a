"""The network half of the model contract (kancoin.models.base has the spec half).

A family's network is a `CodedModel`: its coded tensors in bitstream order, its evaluation
at coordinates, and optional hooks for a faster training step or renderer. Networks live in
kancoin/models/nets/ and import torch; specs do not, so a header is read, and a hostile one
refused, before torch is imported.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kancoin.models.base import ModelSpec


class CodedModel(nn.Module):
    """A network whose `coded_tensors()` are what the file stores, in bitstream order.

    forward(coords) evaluates it at (N, in_features) coordinates in [-1, 1]. Optional hooks
    return None unless a family has something faster than autograd and its own forward.
    """

    spec: ModelSpec

    def coded_tensors(self) -> list[nn.Parameter]:
        raise NotImplementedError

    @torch.no_grad()
    def init_output(self, mean: torch.Tensor) -> None:
        """Start the output at the signal's mean (families without an output bias: no-op)."""

    def step_kind(self) -> str | None:
        """The hand-written training step this model can use (kancoin.fit.select.FAST_STEPS),
        or None for chunked autograd."""
        return None

    def native_forward(self, coords: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """A faster forward for rendering coordinates like `coords` (same math), or None."""
        return None
