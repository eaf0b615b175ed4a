"""Evaluate a coordinate network over many coordinates without holding all activations."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kancoin.kernels import sin_, use_native
from kancoin.models.siren import Siren
from kancoin.parallel import ChunkThreads

RENDER_CHUNK = 1 << 13
_THREADS = ChunkThreads()


@torch.no_grad()
def render(model: nn.Module, coords: torch.Tensor, *, chunk: int = RENDER_CHUNK) -> torch.Tensor:
    """model(coords) computed in chunks; chunks keep activations in cache and memory flat.

    On the CPU threads take whole chunks (kancoin.parallel); a GPU gets big chunks.
    """
    if coords.device.type != "cpu":
        chunk = max(chunk, 1 << 18)
    forward = _forward_for(model, coords)
    starts = list(range(0, coords.shape[0], chunk))
    outputs: list[torch.Tensor | None] = [None] * len(starts)

    def work(thread: int, thread_starts: list[int]) -> None:
        with torch.no_grad():  # grad mode is per thread
            for start in thread_starts:
                outputs[start // chunk] = forward(coords[start : start + chunk])

    if coords.device.type == "cpu":
        _THREADS.map(starts, work)
    else:
        work(0, starts)
    return torch.cat(outputs) if outputs else coords.new_zeros((0, 0))


def _forward_for(model: nn.Module, coords: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A SIREN's forward with the native sine when it is built; the model's own otherwise."""
    if not (isinstance(model, Siren) and use_native("auto", coords)):
        return model
    weights = [w.detach() for w in model.weights]
    biases = [b.detach() for b in model.biases]
    frequencies = model.frequencies()

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = model.encode(x)
        for weight, bias, w0 in zip(weights, biases, frequencies, strict=False):
            h = torch.addmm(bias, h, weight.t(), beta=w0, alpha=w0)  # w0 (h W^T + b)
            sin_(h, native=True)
        return torch.addmm(biases[-1], h, weights[-1].t())

    return forward
