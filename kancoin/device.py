"""Choosing where to compute: CUDA when asked for or available, the CPU otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from kancoin.errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was asked for, but no CUDA device is available")
        return torch.device(name)
    raise DeviceError(f"unknown device {name!r} (use auto, cpu or cuda)")


def set_threads(threads: int | None) -> None:
    """Limit intra-op threads; None keeps torch's default (all cores)."""
    if threads is not None:
        if threads < 1:
            raise DeviceError("--threads must be at least 1")
        torch.set_num_threads(threads)


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Limit intra-op threads for a block, then restore torch's setting; None: no limit."""
    previous = torch.get_num_threads()
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
