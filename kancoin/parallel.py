"""Spreading a step's coordinate chunks over CPU threads, one whole chunk at a time.

A coordinate network's ops are skinny (e.g. 4096x44 by 44x44): split across cores, each op
spends much of its time in barriers, and stalls whenever a busy machine deschedules one of
its threads. Here chunk i goes to worker thread i mod T; each worker runs its ops
single-threaded (its own OpenMP/MKL setting, made once when it starts) and accumulates into
its own gradient buffers, which are summed into `.grad` in thread order, so the gradients
do not depend on timing. One join per step. The calling thread only waits: changing its
thread count back and forth would leave MKL threading even tiny ops afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from kancoin.device import keep_mkl_dynamic, set_torch_threads

# work(thread index, chunk starts for that thread, gradient buffers: one per param, None
# for frozen params); thread 0 writes straight into the params' .grad
ChunkWork = Callable[[int, list[int], list[torch.Tensor | None]], None]


class ChunkThreads:
    """Runs a step's chunks on `threads` threads (default: torch's thread count at call)."""

    def __init__(self, threads: int | None = None):
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._buffers: list[list[torch.Tensor]] = []
        self._buffer_key: tuple | None = None

    def count(self, chunks: int) -> int:
        """How many threads a step of `chunks` chunks will use."""
        return max(1, min(self.threads or torch.get_num_threads(), chunks))

    def map(self, starts: list[int], work: Callable[[int, list[int]], None]) -> None:
        """Call work(thread index, that thread's chunk starts) on every thread; wait for all."""
        threads = self.count(len(starts))
        if threads == 1:
            work(0, starts)
            return
        pool = self._pool_for(threads)
        futures = [pool.submit(work, index, starts[index::threads]) for index in range(threads)]
        for future in futures:
            future.result()
        keep_mkl_dynamic()  # a worker starting up turns MKL's process-wide dynamic mode off

    def run(self, params: list[torch.Tensor], starts: list[int], work: ChunkWork) -> None:
        """map() for a training step: gradients of thread 0 go straight into .grad, the
        others into private buffers added to .grad afterwards in thread order."""
        for param in params:
            if param.requires_grad and param.grad is None:
                param.grad = torch.zeros_like(param)
        own = [p.grad if p.requires_grad else None for p in params]
        threads = self.count(len(starts))
        private = self._private_grads(params, threads) if threads > 1 else []

        def with_grads(thread: int, thread_starts: list[int]) -> None:
            work(thread, thread_starts, own if thread == 0 else private[thread - 1])

        self.map(starts, with_grads)
        for grads in private:
            for param, grad in zip(params, grads, strict=True):
                if grad is not None:
                    param.grad.add_(grad)

    def _private_grads(self, params, threads) -> list[list[torch.Tensor | None]]:
        key = tuple((p.shape, p.dtype, p.device) for p in params)
        if self._buffer_key != key:
            self._buffer_key, self._buffers = key, []
        while len(self._buffers) < threads - 1:
            self._buffers.append([torch.empty_like(p) for p in params])
        private = []
        for buffers in self._buffers[: threads - 1]:
            grads = []
            for param, buffer in zip(params, buffers, strict=True):
                grads.append(buffer.zero_() if param.requires_grad else None)
            private.append(grads)
        return private

    def _pool_for(self, threads: int) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_size < threads:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool_size = threads
            self._pool = ThreadPoolExecutor(
                max_workers=threads,
                thread_name_prefix="kancoin-chunks",
                initializer=set_torch_threads,  # per-thread OpenMP setting: ops run alone
                initargs=(1,),
            )
        return self._pool
