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

    @contextmanager
    def rounded(self) -> Iterator[None]:
        with torch.no_grad():
            latent = [t.detach().clone() for t in self.tensors]
            for tensor, step in zip(self.tensors, self.step_sizes, strict=True):
                tensor.copy_(torch.round(tensor / step) * step)
        try:
            yield
        finally:
            with torch.no_grad():
                for tensor, value in zip(self.tensors, latent, strict=True):
                    tensor.copy_(value)
