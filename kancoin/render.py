"""Evaluate a coordinate network over many coordinates without holding all activations.

Chunks are sized by memory (the model's activation bytes per coordinate), not by a fixed
count, so a wide network or a KAN's basis tensor cannot blow up one chunk; outputs go into
one preallocated tensor, and callers that can compute coordinates per chunk never hold them
all (`render_into`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kancoin.budget import RENDER_CHUNK, chunk_for_spec
from kancoin.parallel import ChunkThreads

_THREADS = ChunkThreads()

CoordsFn = Callable[[int, int], torch.Tensor]  # (start, stop) -> coordinates of those samples


def chunk_for(model: nn.Module) -> int:
    """Coordinates per chunk for this model (chunk_for_spec of its spec)."""
    spec = getattr(model, "spec", None)
    return RENDER_CHUNK if spec is None else chunk_for_spec(spec)


@torch.no_grad()
def render(model: nn.Module, coords: torch.Tensor, *, chunk: int | None = None) -> torch.Tensor:
    """model(coords) computed in chunks; chunks keep activations in cache and memory flat.

    On the CPU threads take whole chunks (kancoin.parallel); a GPU gets big chunks.
    """
    return render_into(
        model, coords.shape[0], lambda start, stop: coords[start:stop], coords, chunk=chunk
    )


@torch.no_grad()
def render_into(
    model: nn.Module,
    count: int,
    coords_at: CoordsFn,
    like: torch.Tensor,
    *,
    chunk: int | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """`count` outputs of model(coords_at(start, stop)) chunk by chunk, into `out` (made
    when None, with the device and dtype of `like`)."""
    chunk = chunk or chunk_for(model)
    if like.device.type != "cpu":
        chunk = max(chunk, min(1 << 18, 32 * chunk))
    forward = _forward_for(model, like)
    if count == 0:
        return like.new_zeros((0, 0)) if out is None else out
    if out is None:
        first = forward(coords_at(0, min(chunk, count)))
        out = first.new_empty((count, first.shape[1]))
        out[: first.shape[0]] = first
        starts = list(range(chunk, count, chunk))
    else:
        starts = list(range(0, count, chunk))

    def work(thread: int, thread_starts: list[int]) -> None:
        with torch.no_grad():  # grad mode is per thread
            for start in thread_starts:
                stop = min(start + chunk, count)
                out[start:stop] = forward(coords_at(start, stop))

    if like.device.type == "cpu":
        _THREADS.map(starts, work)
    else:
        work(0, starts)
    return out


def _forward_for(model: nn.Module, coords: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's native_forward for coordinates like these when it has one (the SIREN's
    C sine, a KAN's coefficients computed once), its own forward otherwise."""
    native = getattr(model, "native_forward", None)
    return (native(coords) if native is not None else None) or model
