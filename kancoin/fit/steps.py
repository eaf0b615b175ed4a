"""Step implementations: given coordinates and targets, leave gradients in `param.grad`.

The trainer only calls `step(model, coords, targets, weights)`; a faster implementation
(hand-written backward, compiled, chunked) can replace autograd without touching the loop.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class StepFn(Protocol):
    def __call__(
        self,
        model: nn.Module,
        coords: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Accumulate d(loss)/d(params) into .grad; return per-coordinate squared errors.

        loss = mean over coordinates of (weight_i * sum over channels of squared error) / C,
        i.e. the plain MSE when weights are None. The returned residual norms (detached,
        one per coordinate) let error-driven samplers rank coordinates for free.
        """
        ...


def autograd_step(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    prediction = model(coords)
    sq_err = (prediction - targets).pow(2).sum(dim=1)
    per_coord = sq_err if weights is None else sq_err * weights
    loss = per_coord.sum() / (coords.shape[0] * targets.shape[1])
    loss.backward()
    return sq_err.detach()


def chunked(step: StepFn, chunk: int) -> StepFn:
    """`step` over slices of at most `chunk` coordinates, gradients accumulated.

    The loss is a mean over coordinates, so each slice's importance weights are scaled by
    its share of the batch: the summed gradients equal the whole batch's. Peak activation
    memory then follows the chunk, not the batch (KAN's spline bases are wide).
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")

    def run(
        model: nn.Module,
        coords: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        total = coords.shape[0]
        if total <= chunk:
            return step(model, coords, targets, weights)
        errors = []
        for start in range(0, total, chunk):
            part = slice(start, start + chunk)
            count = coords[part].shape[0]
            share = coords.new_full((count,), count / total)
            if weights is not None:
                share = share * weights[part]
            errors.append(step(model, coords[part], targets[part], share))
        return torch.cat(errors)

    return run
