"""sin and cos of the same pre-activations, natively when the C kernel is built.

The fast SIREN step needs sin(z) going forward and cos(z) going back; torch computes each
at the cost of the layer's matrix product. `sincos.c` does both in one pass (`make native`
builds it next to this file); without it, or off the CPU, plain torch does the same math.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import torch

LIBRARY_NAME = "_sincos.so"
KERNELS = ("auto", "native", "torch")


@cache
def native_library() -> ctypes.CDLL | None:
    """The built kernel, or None when it was not built (no C compiler) or cannot load."""
    path = Path(__file__).with_name(LIBRARY_NAME)
    if not path.is_file():
        return None
    try:
        library = ctypes.CDLL(str(path))
    except OSError:
        return None
    signature = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    for function in (library.kc_sincos, library.kc_sin):
        function.argtypes = signature
        function.restype = None
    return library


def native_available() -> bool:
    return native_library() is not None


def use_native(kernel: str, *tensors: torch.Tensor) -> bool:
    """Whether `kernel` ("auto", "native" or "torch") runs natively on these tensors."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r} (have: {', '.join(KERNELS)})")
    if kernel == "torch":
        return False
    fits = all(
        t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tensors
    )
    if kernel == "native" and not (fits and native_available()):
        raise RuntimeError("the native sincos kernel is not built or does not fit these tensors")
    return fits and native_available()


def sincos_(z: torch.Tensor, sin_out: torch.Tensor, *, native: bool) -> None:
    """sin_out = sin(z), then z = cos(z) in place; contiguous, same shape, not overlapping."""
    if native:
        library = native_library()
        library.kc_sincos(z.data_ptr(), sin_out.data_ptr(), z.numel(), torch.get_num_threads())
    else:
        torch.sin(z, out=sin_out)
        z.cos_()


def sin_(z: torch.Tensor, *, native: bool) -> None:
    """z = sin(z) in place."""
    if native:
        library = native_library()
        library.kc_sin(z.data_ptr(), z.data_ptr(), z.numel(), torch.get_num_threads())
    else:
        z.sin_()
