"""Evaluate a coordinate network over many coordinates without holding all activations."""

from __future__ import annotations

import torch
from torch import nn

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
    native = getattr(model, "native_forward", None)
    forward = (native(coords) if native is not None else None) or model
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
