"""Where independent units of work run: this process, a local process pool, or a Ray cluster.

A sweep row or a batch encode is a pure function of its arguments that returns a small,
picklable value; an engine runs many such calls and yields each outcome as it finishes, in
completion order. The caller alone writes results, so a call retried by the engine (Ray
retries tasks whose worker or node died) can never be recorded twice.

`local` is the default and needs nothing beyond the standard library. `ray` is imported only
when asked for (`pip install kancoin[ray]`); it joins the cluster at `address` (or
$RAY_ADDRESS), or starts a local one in-process.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kancoin.errors import UsageError

ENGINES = ("local", "ray")
RAY_RETRIES = 3  # attempts after a worker or node dies mid-task (not after an exception)


@dataclass(frozen=True)
class Outcome:
    """What became of one call: its value, or the exception it ended with."""

    index: int  # position of the call in the submitted sequence
    value: Any = None
    error: BaseException | None = None


class Engine(ABC):
    """Runs calls of one function; each call asks for `cpus` CPUs (its torch threads)."""

    name: str

    @abstractmethod
    def run(
        self, function: Callable[..., Any], calls: Sequence[tuple], *, cpus: int = 1
    ) -> Iterator[Outcome]:
        """Yield an Outcome per call (function(*args) for args in calls) as each finishes.

        An exception raised by a call, or its worker's death, is its outcome (Ray retries a
        dead worker's task first); KeyboardInterrupt propagates.
        """

    def share(self, value: Any) -> Any:
        """A handle to pass large, repeated arguments once (Ray's object store); here, itself."""
        return value

    def close(self) -> None:  # noqa: B027 - most engines hold nothing between runs
        """Release workers (and a local cluster this engine started)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class InlineEngine(Engine):
    """One call after another in this process: no start-up cost, easy to debug and patch."""

    name = "inline"

    def run(self, function, calls, *, cpus=1):
        for index, args in enumerate(calls):
            try:
                value = function(*args)
            except Exception as exc:
                yield Outcome(index, error=exc)
            else:
                yield Outcome(index, value=value)


class LocalEngine(Engine):
    """A pool of `workers` processes on this machine (spawned, never forked: torch's threads)."""

    name = "local"

    def __init__(self, workers: int):
        if workers < 1:
            raise UsageError("--workers must be at least 1")
        self.workers = workers

    def run(self, function, calls, *, cpus=1):
        if not calls:
            return
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=min(self.workers, len(calls)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_set_threads,
            initargs=(cpus,),
        )
        try:
            futures = {executor.submit(function, *args): i for i, args in enumerate(calls)}
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                error = future.exception()  # BrokenProcessPool: a worker died (e.g. memory)
                if error is not None:
                    yield Outcome(index, error=error)
                else:
                    yield Outcome(index, value=future.result())
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown()


class RayEngine(Engine):
    """Tasks on a Ray cluster: each asks for `cpus` CPUs, so the scheduler packs them right.

    A task whose worker process or node dies is retried by Ray (up to RAY_RETRIES times); a
    task that raises is not, its exception is its outcome.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, local_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise UsageError(
                "--engine ray needs Ray: pip install 'kancoin[ray]' (or pip install ray)"
            ) from None
        self._ray = ray
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._owns_cluster = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                options["num_cpus"] = local_cpus or os.cpu_count() or 1
                self._owns_cluster = True
            try:
                ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(f"cannot reach the Ray cluster at {address}: {exc}") from None

    def share(self, value):
        return self._ray.put(value)

    def run(self, function, calls, *, cpus=1):
        ray = self._ray
        remote = ray.remote(_call_with_threads).options(
            num_cpus=cpus, max_retries=RAY_RETRIES, retry_exceptions=False
        )
        pending = {remote.remote(cpus, function, *args): i for i, args in enumerate(calls)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        yield Outcome(index, error=_cause(exc))
                    except ray.exceptions.RayError as exc:  # retries exhausted, node lost
                        yield Outcome(index, error=exc)
                    else:
                        yield Outcome(index, value=value)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self._owns_cluster and self._ray.is_initialized():
            self._ray.shutdown()


def make_engine(
    name: str, *, workers: int = 1, threads: int = 1, address: str | None = None
) -> Engine:
    """The engine a command asked for. `local` with one worker runs in this process."""
    if name == "local":
        return InlineEngine() if workers == 1 else LocalEngine(workers)
    if name == "ray":
        return RayEngine(address, local_cpus=workers * threads)
    raise UsageError(f"unknown engine {name!r} (have: {', '.join(ENGINES)})")


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _call_with_threads(threads: int, function: Callable[..., Any], *args: Any) -> Any:
    _set_threads(threads)
    return function(*args)


def _cause(exc: BaseException) -> BaseException:
    """The user's exception inside Ray's wrapper, so callers see what the task raised."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
