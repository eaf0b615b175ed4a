"""Per-tensor uniform quantization on a table of steps.

A step is 2**(index / STEPS_PER_OCTAVE); only the integer index is stored, so encoder and
decoder dequantize to bit-identical floats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch  # imported where used: reading a header must not load torch

STEPS_PER_OCTAVE = 16
STEP_INDEX_MIN = -640  # 2**-40
STEP_INDEX_MAX = 63  # just under 2**4
MAX_ABS_INT = (1 << 20) - 1  # keeps every alphabet below constriction's 2**24 limit


def step_size(index: int) -> float:
    return float(2.0 ** (index / STEPS_PER_OCTAVE))


def quantize(values: torch.Tensor | np.ndarray, index: int) -> np.ndarray:
    """Round to the nearest multiple of the step; int32, clipped to the coder's alphabet."""
    array = _numpy(values)
    ints = np.rint(array.astype(np.float64) / step_size(index))
    return np.clip(ints, -MAX_ABS_INT, MAX_ABS_INT).astype(np.int32)


def dequantize(ints: np.ndarray, index: int) -> np.ndarray:
    return (ints.astype(np.float64) * step_size(index)).astype(np.float32)


def round_to_step(values: torch.Tensor, step: float) -> torch.Tensor:
    """dequantize(quantize(values)) in torch, on the values' own device: the same float64
    rounding and clipping, so fine-tuning sees exactly the values the file will hold."""
    import torch

    ints = torch.round(values.double() / step).clamp_(-MAX_ABS_INT, MAX_ABS_INT)
    return (ints * step).to(values.dtype)


def index_for_bits(values: torch.Tensor | np.ndarray, bits: int) -> int:
    """Finest step whose integers fit in `bits` signed bits (|q| <= 2**(bits-1) - 1)."""
    array = _numpy(values)
    peak = float(np.max(np.abs(array))) if array.size else 0.0
    levels = max(1, (1 << (bits - 1)) - 1)
    if peak == 0.0:
        return STEP_INDEX_MIN
    index = int(np.ceil(np.log2(peak / levels) * STEPS_PER_OCTAVE))
    # rounding must not push the peak past the level count
    while index < STEP_INDEX_MAX and np.rint(peak / step_size(index)) > levels:
        index += 1
    return int(np.clip(index, STEP_INDEX_MIN, STEP_INDEX_MAX))


def effective_bits(ints: np.ndarray) -> int:
    """Signed bits needed for the largest integer (for reporting)."""
    peak = int(np.max(np.abs(ints))) if ints.size else 0
    return int(peak).bit_length() + 1


def _numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else values.detach().cpu().numpy()
