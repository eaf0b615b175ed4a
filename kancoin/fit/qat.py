"""Quantization-aware fine-tuning with the straight-through estimator.

After the bit allocation has chosen a step per tensor, a short run trains the float
("latent") weights on the loss of their rounded values: each step evaluates the network with
every coded tensor rounded to its step, and applies that gradient to the unrounded weights.
Rounding errors that the allocation had to accept are then partly undone by the other
weights, so the same file size decodes closer to the float fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from kancoin.quant import round_to_step


class StraightThrough:
    """Swaps each coded tensor for its rounded value in place, and back.

    In place, so steps that hold on to parameter storage (the fast CPU step) see the
    rounded values too; the gradient computed at the rounded point is applied to the latent
    weights, which is the straight-through estimator.
    """

    def __init__(self, model: nn.Module, step_sizes: Sequence[float]):
        self.tensors = list(model.coded_tensors())
        if len(self.tensors) != len(step_sizes):
            raise ValueError(f"{len(step_sizes)} step sizes for {len(self.tensors)} tensors")
        self.step_sizes = [float(s) for s in step_sizes]
        # the latent weights wait here while the rounded ones are in place (every step)
        self._latent = [torch.empty_like(t) for t in self.tensors]

    @contextmanager
    def rounded(self) -> Iterator[None]:
        with torch.no_grad():
            for tensor, latent, step in zip(
                self.tensors, self._latent, self.step_sizes, strict=True
            ):
                latent.copy_(tensor)
                tensor.copy_(round_to_step(tensor, step))
        try:
            yield
        finally:
            with torch.no_grad():
                for tensor, latent in zip(self.tensors, self._latent, strict=True):
                    tensor.copy_(latent)
