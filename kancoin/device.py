"""Choosing where to compute: CUDA when asked for or available, the CPU otherwise.

torch is imported by the functions that use it: the CLI names DEVICE_CHOICES without it."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from kancoin.errors import DeviceError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    import torch

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
    import torch

    if threads is not None:
        if threads < 1:
            raise DeviceError("--threads must be at least 1")
        if threads != torch.get_num_threads():
            set_torch_threads(threads)


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """set_threads for a block, then torch's previous thread count again."""
    import torch

    previous = torch.get_num_threads()
    set_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            set_torch_threads(previous)


def set_torch_threads(threads: int) -> None:
    """torch.set_num_threads for the calling thread, keeping MKL's dynamic threading on.

    torch.set_num_threads also turns MKL's dynamic mode off for the whole process, after
    which MKL forks all threads even for a 44x44 product or a sqrt of 2k floats; on a busy
    machine every such fork waits for a descheduled thread (milliseconds per op).
    """
    import torch

    torch.set_num_threads(threads)
    keep_mkl_dynamic()


def keep_mkl_dynamic() -> None:
    """Turn MKL's dynamic threading (back) on; a no-op without MKL."""
    set_dynamic = _mkl_set_dynamic()
    if set_dynamic is not None:
        set_dynamic(ctypes.byref(ctypes.c_int(1)))


@cache
def _mkl_set_dynamic():
    """MKL's mkl_set_dynamic (Fortran convention: a pointer) from torch's library, if any."""
    import torch

    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        return ctypes.CDLL(str(library)).mkl_set_dynamic_
    except (OSError, AttributeError):
        return None
