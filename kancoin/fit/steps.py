"""Step implementations: given coordinates and targets, leave gradients in `param.grad`.

The trainer only calls `step(model, coords, targets, weights)`; a faster implementation
(hand-written backward, compiled, chunked) can replace autograd without touching the loop.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from kancoin.parallel import ChunkThreads


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


class ChunkedAutogradStep:
    """Autograd over chunks of coordinates, gradients accumulated across chunks.

    The fallback for models without a hand-written step: the same loss and gradients as
    `autograd_step`, but only one chunk's activations are alive at a time (they stay in
    cache, memory stays flat), and threads take whole chunks (kancoin.parallel).
    """

    def __init__(self, chunk: int = 8192, threads: int | None = None):
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        self.chunk = chunk
        self._threads = ChunkThreads(threads)

    def __call__(
        self, model: nn.Module, coords: Tensor, targets: Tensor, weights: Tensor | None = None
    ) -> Tensor:
        count, channels = targets.shape
        sq_err = torch.empty(count, dtype=targets.dtype, device=targets.device)
        scale = 1.0 / (count * channels)
        params = list(model.parameters())
        trained = [p for p in params if p.requires_grad]

        def work(thread: int, starts: list[int], grads: list[torch.Tensor | None]) -> None:
            accumulators = [g for g in grads if g is not None]
            for start in starts:
                stop = min(start + self.chunk, count)
                with torch.enable_grad():
                    prediction = model(coords[start:stop])
                    chunk_err = (prediction - targets[start:stop]).pow(2).sum(dim=1)
                    per_coord = chunk_err if weights is None else chunk_err * weights[start:stop]
                    chunk_grads = torch.autograd.grad(per_coord.sum() * scale, trained)
                for accumulator, grad in zip(accumulators, chunk_grads, strict=True):
                    accumulator.add_(grad)
                sq_err[start:stop] = chunk_err.detach()

        self._threads.run(params, list(range(0, count, self.chunk)), work)
        return sq_err
