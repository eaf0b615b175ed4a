"""The sine layers' elementwise work, natively when the C kernels are built.

The fast SIREN step needs sin(t) going forward and cos(t) going back, t = w0 (x W^T + b);
torch computes each at the cost of the layer's matrix product. `kernels.c` does both in one
pass with the bias and w0 folded in, and the backward's product with the upstream gradient
together with the bias gradient's column sums (`make native` builds it next to this file).
Without it, or off the CPU, or for other dtypes, plain torch does the same math.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import torch

LIBRARY_NAME = "_kernels.so"
KERNELS = ("auto", "native", "torch")

_POINTER, _INT64, _INT, _FLOAT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
_SIGNATURES = {
    "kc_sin": [_POINTER, _POINTER, _INT64, _INT],
    "kc_sine_layer": [_POINTER, _POINTER, _POINTER, _FLOAT, _INT64, _INT64, _INT],
    "kc_mul_column_sums": [_POINTER, _POINTER, _POINTER, _INT64, _INT64],
}


@cache
def native_library() -> ctypes.CDLL | None:
    """The built kernels, or None when they were not built (no C compiler) or cannot load."""
    path = Path(__file__).with_name(LIBRARY_NAME)
    if not path.is_file():
        return None
    try:
        library = ctypes.CDLL(str(path))
        for name, signature in _SIGNATURES.items():
            function = getattr(library, name)
            function.argtypes = signature
            function.restype = None
    except (OSError, AttributeError):  # unloadable, or built from an older source
        return None
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
        raise RuntimeError("the native kernels are not built or do not fit these tensors")
    return fits and native_available()


def sin_(z: torch.Tensor, *, native: bool) -> None:
    """z = sin(z) in place."""
    if native:
        native_library().kc_sin(z.data_ptr(), z.data_ptr(), z.numel(), torch.get_num_threads())
    else:
        z.sin_()


def sine_layer_(
    z: torch.Tensor, sin_out: torch.Tensor, bias: torch.Tensor, w0: float, *, native: bool
) -> None:
    """With z = x W^T (rows x width): t = w0 (z + bias), sin_out = sin(t), z = cos(t)."""
    if native:
        rows, cols = z.shape
        native_library().kc_sine_layer(
            z.data_ptr(),
            sin_out.data_ptr(),
            bias.data_ptr(),
            w0,
            rows,
            cols,
            torch.get_num_threads(),
        )
    else:
        z.add_(bias).mul_(w0)
        torch.sin(z, out=sin_out)
        z.cos_()


def mul_column_sums_(
    g: torch.Tensor, upstream: torch.Tensor, column_sums: torch.Tensor, *, native: bool
) -> None:
    """g *= upstream in place, and column_sums = g summed over its rows."""
    if native:
        rows, cols = g.shape
        native_library().kc_mul_column_sums(
            g.data_ptr(), upstream.data_ptr(), column_sums.data_ptr(), rows, cols
        )
    else:
        g.mul_(upstream)
        torch.sum(g, dim=0, out=column_sums)
