"""Entropy coding of quantized tensors with constriction's range coder.

Each tensor gets its own model, chosen as the cheapest of a few parametric families whose
parameters are small integers carried in the header, so the decoder rebuilds the exact
same distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import constriction
import numpy as np

from kancoin.errors import FormatError
from kancoin.quant import MAX_ABS_INT

SCALE_INDEX_OFFSET = 64
SCALE_STEPS_PER_OCTAVE = 8
SCALE_INDEX_MAX = 255
MIN_PROBABILITY = 2.0**-24  # constriction's default 24-bit probability precision
DECODE_PIECE = 1 << 20  # symbols per constriction call: bounds its float64 parameter arrays


class Family(IntEnum):
    """Explicit ids: they are written into files."""

    UNIFORM = 0
    LAPLACE = 1
    GAUSSIAN = 2


@dataclass(frozen=True)
class EntropyParams:
    family: Family
    scale_index: int  # ignored for UNIFORM
    max_abs: int  # alphabet is [-max_abs, max_abs]; 0 means "all zeros, nothing coded"

    def scale(self) -> float:
        return scale_from_index(self.scale_index)


def scale_from_index(index: int) -> float:
    return float(2.0 ** ((index - SCALE_INDEX_OFFSET) / SCALE_STEPS_PER_OCTAVE))


def _family_model(params: EntropyParams):
    m = params.max_abs
    if params.family == Family.UNIFORM:
        return constriction.stream.model.Uniform(2 * m + 1), None
    cls = (
        constriction.stream.model.QuantizedLaplace
        if params.family == Family.LAPLACE
        else constriction.stream.model.QuantizedGaussian
    )
    return cls(-m, m), params.scale()


def estimate_bits(ints: np.ndarray, params: EntropyParams) -> float:
    """Ideal code length in bits under the model (close to what the range coder spends).

    Only the values that occur are evaluated; the truncation to [-max_abs, max_abs] is a
    closed-form normaliser, so 16-bit alphabets cost no more than 8-bit ones.
    """
    if ints.size == 0 or params.max_abs == 0:
        return 0.0
    m = params.max_abs
    if params.family == Family.UNIFORM:
        return ints.size * math.log2(2 * m + 1)
    values, counts = np.unique(ints, return_counts=True)
    values = values.astype(np.float64)
    b = params.scale()
    cdf = _laplace_cdf if params.family == Family.LAPLACE else _gauss_cdf
    mass = cdf(values + 0.5, b) - cdf(values - 0.5, b)
    total = float(cdf(np.array([m + 0.5]), b)[0] - cdf(np.array([-m - 0.5]), b)[0])
    # the coder gives every symbol at least its smallest representable probability
    probability = np.maximum(mass / max(total, 1e-300), MIN_PROBABILITY)
    return float(-(counts * np.log2(probability)).sum())


def _laplace_cdf(x: np.ndarray, b: float) -> np.ndarray:
    return np.where(x < 0, 0.5 * np.exp(x / b), 1.0 - 0.5 * np.exp(-x / b))


def _gauss_cdf(x: np.ndarray, sigma: float) -> np.ndarray:
    import torch

    scaled = torch.from_numpy(x / (sigma * math.sqrt(2.0)))
    return 0.5 * (1.0 + torch.special.erf(scaled).numpy())


def choose_params(ints: np.ndarray) -> tuple[EntropyParams, float]:
    """The cheapest family and scale for these integers, with its estimated bit cost."""
    m = int(np.max(np.abs(ints))) if ints.size else 0
    if m > MAX_ABS_INT:
        raise ValueError(f"integer {m} outside the coder's alphabet")
    if m == 0:
        return EntropyParams(Family.UNIFORM, 0, 0), 0.0
    best = EntropyParams(Family.UNIFORM, 0, m)
    best_bits = estimate_bits(ints, best)
    values = ints.astype(np.float64)
    guesses = {
        Family.LAPLACE: max(np.mean(np.abs(values)), 1e-3),
        Family.GAUSSIAN: max(float(np.sqrt(np.mean(values**2))), 1e-3),
    }
    for family, guess in guesses.items():
        centre = SCALE_INDEX_OFFSET + round(SCALE_STEPS_PER_OCTAVE * math.log2(guess))
        for index in range(centre - 4, centre + 5):
            if not 0 <= index <= SCALE_INDEX_MAX:
                continue
            candidate = EntropyParams(family, index, m)
            bits = estimate_bits(ints, candidate)
            if bits < best_bits:
                best, best_bits = candidate, bits
    return best, best_bits


def encode(tensors: list[tuple[np.ndarray, EntropyParams]]) -> bytes:
    """Range-code every tensor's integers in order; returns little-endian 32-bit words."""
    encoder = constriction.stream.queue.RangeEncoder()
    for ints, params in tensors:
        if params.max_abs == 0:
            if np.any(ints):
                raise ValueError("non-zero integers with an all-zero model")
            continue
        flat = ints.astype(np.int32).ravel()
        model, scale = _family_model(params)
        for start in range(0, flat.size, DECODE_PIECE):  # same stream, bounded temporaries
            piece = flat[start : start + DECODE_PIECE]
            if params.family == Family.UNIFORM:
                encoder.encode(piece + params.max_abs, model)
            else:
                encoder.encode(piece, model, np.zeros(piece.size), np.full(piece.size, scale))
    words = encoder.get_compressed()
    return np.asarray(words, dtype="<u4").tobytes()


def decode(payload: bytes, tensors: list[tuple[int, EntropyParams]]) -> list[np.ndarray]:
    """Inverse of `encode`, given each tensor's element count and model.

    Strict: the payload must be exactly what `encode` writes for the decoded integers (no
    trailing words, no other encoding of the same symbols); anything else is a FormatError.
    Large tensors are decoded in pieces, so temporaries stay small whatever the file says.
    """
    if len(payload) % 4:
        raise FormatError("payload is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    out = []
    # constriction signals invalid data with AssertionError as well as ValueError and co.
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        for count, params in tensors:
            if params.max_abs == 0 or count == 0:
                out.append(np.zeros(count, dtype=np.int32))
                continue
            ints = np.empty(count, dtype=np.int32)
            for start in range(0, count, DECODE_PIECE):
                ints[start : start + DECODE_PIECE] = _decode_piece(
                    decoder, params, min(DECODE_PIECE, count - start)
                )
            out.append(ints)
    except (AssertionError, ValueError, RuntimeError, KeyError, OverflowError) as exc:
        raise FormatError(f"entropy-coded payload is corrupt ({_one_line(exc)})") from None
    canonical = encode(list(zip(out, (params for _, params in tensors), strict=True)))
    if canonical != payload:
        raise FormatError(
            f"entropy-coded payload is not canonical ({len(payload) // 4} words where the "
            f"encoder writes {len(canonical) // 4} for these values)"
        )
    return out


def _decode_piece(decoder, params: EntropyParams, count: int) -> np.ndarray:
    model, scale = _family_model(params)
    if params.family == Family.UNIFORM:
        return decoder.decode(model, count).astype(np.int32) - params.max_abs
    return decoder.decode(model, np.zeros(count), np.full(count, scale))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
