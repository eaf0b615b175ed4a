"""The decode budget: what decoding a file will cost, checked before any of it is spent.

A file of a few bytes can declare millions of parameters rendered at millions of samples:
its cost is parameters x samples, not its size. `estimate` computes, from the header and the
output size alone, the work (multiply-adds, elementwise work counted in their equivalent)
and the peak working memory (bytes); `check` refuses a decode above the budget with the
numbers, before the payload is even entropy-decoded. Rendering then runs in chunks sized
here (chunk_for_spec), so the memory estimate holds.

Nothing here imports torch: a hostile header is priced and refused before torch loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kancoin.errors import BudgetError, UsageError

# ~a minute on one core of the reference machine (2e10 multiply-adds/s measured rendering SIREN
# 2x1024, 1.3e10 for 10x64): a 4K render of a 1 bpp Kodak-size SIREN (~5.8e11) fits, a
# 65-byte file declaring SIREN 2x4090 at 256x256 (1.1e12) does not.
DEFAULT_MAX_WORK = 10**12
DEFAULT_MAX_MEMORY = 1 << 30  # bytes
WORK_PER_SAMPLE = 60  # grid coordinates, clamping, conversion for the writer
WORK_PER_PARAM = 2000  # range decoding, the canonical re-encode, dequantization, build
WORK_PER_NETWORK = 12_000_000  # building a module and its render calls (0.3-1 ms measured)
BYTES_PER_PARAM = 4 + 4  # decoded integers of every network, float32 weights of one
FILE_COPIES = 4  # the file's bytes, its body and payload slices, the payload's words
RENDER_CHUNK = 1 << 13  # most coordinates per render chunk: activations stay in cache
RENDER_MEMORY = 32 << 20  # activation bytes one chunk may hold (per thread)


@dataclass(frozen=True)
class DecodeBudget:
    """Limits for one decode; the CLI's --max-work and --max-memory."""

    max_work: float = DEFAULT_MAX_WORK
    max_memory: int = DEFAULT_MAX_MEMORY

    def __post_init__(self) -> None:
        if not self.max_work > 0:
            raise UsageError(f"--max-work must be positive, got {self.max_work}")
        if not self.max_memory > 0:
            raise UsageError(f"--max-memory must be positive, got {self.max_memory}")


@dataclass(frozen=True)
class DecodeCost:
    work: int  # multiply-add equivalents
    memory: int  # peak bytes beyond the interpreter's own
    samples: int  # output samples (pixels or frames)
    chunk: int  # coordinates per render chunk
    what: str  # e.g. "siren 2x4090 (...) x 1 network at 65536 samples"


def estimate(header, samples: int, channels: int, *, writer_bytes: int, file_bytes: int):
    """Cost of rendering `samples` outputs of `channels` from this header.

    `writer_bytes` per sample is what saving the output holds beyond the float32 output
    (8-bit copy, the image library's own buffer); `file_bytes` the file's size.
    """
    spec = header.spec
    networks = header.networks
    per_network = spec.num_params()
    params = per_network * networks
    largest = max((_prod(shape) for _, shape in spec.tensor_shapes()), default=0)
    work = (
        samples * (spec.macs_per_sample() + WORK_PER_SAMPLE)
        + params * WORK_PER_PARAM
        + networks * WORK_PER_NETWORK
    )
    chunk = chunk_for_spec(spec)
    threads = min(max(1, -(-samples // chunk)), render_threads_bound())
    per_sample = spec.render_bytes_per_sample()
    activations = threads * chunk * (per_sample + 4 * 4 * spec.in_features)
    coding = 2 * 16 * min(largest, 1 << 20)  # constriction's float64 arrays per piece
    memory = (
        params * 4  # decoded integers
        + per_network * 4  # one network's weights at a time
        + 8 * largest  # dequantization's float64 temporary
        + spec.render_extra_bytes()
        + coding
        + FILE_COPIES * file_bytes
        + samples * channels * 4  # float32 output
        + samples * writer_bytes
        + activations
    )
    what = (
        f"{spec.describe()} x {networks} network{'s' if networks > 1 else ''} "
        f"({params} parameters) at {samples} samples"
    )
    return DecodeCost(work=work, memory=memory, samples=samples, chunk=chunk, what=what)


def chunk_for_spec(spec) -> int:
    """RENDER_MEMORY of activations, at most RENDER_CHUNK coordinates, at least one."""
    return max(1, min(RENDER_CHUNK, RENDER_MEMORY // max(1, spec.render_bytes_per_sample())))


def render_threads_bound() -> int:
    """Threads a render may use, each holding one chunk: kancoin.render uses torch's thread
    count, which is at most the CPUs this process may run on (counted without torch)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def check(cost: DecodeCost, budget: DecodeBudget) -> None:
    """Refuse a decode whose cost exceeds the budget, naming the numbers."""
    if cost.work > budget.max_work:
        raise BudgetError(
            f"decoding {cost.what} needs about {cost.work:.3g} multiply-adds, above the "
            f"decode budget of {budget.max_work:.3g}; raise it with --max-work if you mean it"
        )
    if cost.memory > budget.max_memory:
        raise BudgetError(
            f"decoding {cost.what} needs about {_mib(cost.memory)} of memory, above the "
            f"decode budget of {_mib(budget.max_memory)}; raise it with --max-memory "
            "if you mean it"
        )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB"


def _prod(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total
