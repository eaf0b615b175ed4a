"""Batch encoding: many inputs, one overall progress bar, failures reported per file.

The work is spread by the engines `kancoin rd` uses (kancoin.engines): this process for one
worker, a local process pool, or a Ray cluster (`--engine ray`). An engine maps a picklable
function over the jobs and yields outcomes as they finish; this process alone reports them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kancoin.engines import Engine, InlineEngine
from kancoin.errors import KancoinError, UsageError
from kancoin.fileio import ensure_directory, is_stdio

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path


@dataclass(frozen=True)
class Outcome:
    job: Job
    summary: dict | None = None  # EncodeResult.summary() on success
    error: str | None = None  # one line, on failure
    exit_code: int = 0
    skipped: bool = False  # the output existed and --force was not given


@dataclass
class BatchOutcome:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    def lines(self, *, as_json: bool) -> list[str]:
        """One line per file (JSON objects with --json), then a summary line."""
        lines = []
        for o in self.outcomes:
            if as_json:
                record = o.summary or {"input": str(o.job.source), "output": str(o.job.output)}
                if o.error is not None:
                    record = {**record, "error": o.error, "exit_code": o.exit_code}
                if o.skipped:
                    record = {**record, "skipped": True}
                lines.append(json.dumps(record))
            elif o.skipped:
                lines.append(f"{o.job.output}: exists, skipped (--force re-encodes)")
            elif o.error is not None:
                lines.append(f"{o.job.source}: failed: {o.error}")
            else:
                s = o.summary
                unit = "bpp" if "bpp" in s else "kbps"
                psnr = "inf (exact)" if s["psnr"] is None else f"{s['psnr']:.2f} dB"
                lines.append(
                    f"{s['output']}: {s['bytes']} bytes, {s[unit]:.4f} {unit}, PSNR {psnr}, "
                    f"{s['model']}, {s['seconds']:.1f} s"
                )
        if not as_json:
            done = sum(1 for o in self.outcomes if o.error is None and not o.skipped)
            skipped = sum(1 for o in self.outcomes if o.skipped)
            lines.append(
                f"{done} encoded, {skipped} skipped, {len(self.failed)} failed "
                f"of {len(self.outcomes)} files"
            )
        return lines


class BatchError(KancoinError):
    """Some files of a batch failed (each reported on its own line already)."""

    def __init__(self, outcome: BatchOutcome):
        failed = outcome.failed
        codes = {o.exit_code for o in failed}
        self.exit_code = codes.pop() if len(codes) == 1 else 1
        super().__init__(f"{len(failed)} of {len(outcome.outcomes)} files failed")


def is_batch(inputs: Sequence[Path], output: Path | None) -> bool:
    """Several inputs, a directory input, or an output that is a directory."""
    if len(inputs) != 1:
        return True
    (single,) = inputs
    if is_stdio(single):
        return False
    return single.is_dir() or (output is not None and not is_stdio(output) and output.is_dir())


def plan_jobs(inputs: Sequence[Path], output: Path | None, *, force: bool) -> list[Job]:
    """Each input (directories: their image and audio files, sorted) with its .inr path:
    in `output` (created if missing) or beside the input."""
    if any(is_stdio(p) for p in inputs) or is_stdio(output):
        raise UsageError("'-' (stdin/stdout) takes one input, not a batch")
    sources: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(
                p
                for p in item.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + AUDIO_SUFFIXES
            )
            if not found:
                raise UsageError(f"{item}: no image or audio files in this directory")
            sources += found
        else:
            sources.append(item)
    if output is not None:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output}: several inputs need -o to name a directory")
        ensure_directory(output, not_a_directory="is not a directory")
    jobs, taken = [], {}
    for source in sources:
        target = (output / source.name if output is not None else source).with_suffix(".inr")
        key = os.path.normpath(os.path.abspath(target))
        if key in taken:
            raise UsageError(f"{taken[key]} and {source} would both write {target}")
        taken[key] = source
        jobs.append(Job(source, target))
    del force  # existing outputs are decided per job, when it runs
    return jobs


def encode_job(job: Job, config, force: bool, progress=None) -> Outcome:
    """One file, failures caught: a batch reports them and goes on."""
    from kancoin import encoder

    if job.output.exists() and not force:
        return Outcome(job, skipped=True)
    try:
        result = encoder.encode(
            job.source, job.output, config=config, force=force, progress=progress
        )
    except KancoinError as exc:
        return Outcome(job, error=str(exc), exit_code=exc.exit_code)
    except MemoryError:
        return Outcome(job, error="out of memory", exit_code=1)
    except Exception as exc:  # a bug: reported for this file, the others still run
        return Outcome(job, error=f"internal error: {type(exc).__name__}: {exc}", exit_code=70)
    return Outcome(job, summary=result.summary())


@dataclass(frozen=True)
class _EncodeFn:
    """encode_job with its settings bound, picklable for process workers."""

    config: object
    force: bool

    def __call__(self, job: Job) -> Outcome:
        return encode_job(job, self.config, self.force)


def run_batch(
    jobs: Sequence[Job],
    config,
    *,
    engine: Engine,
    cpus: int = 1,
    force: bool = False,
    show_progress: bool = True,
    hint: str | None = None,
) -> BatchOutcome:
    """Encode every job through `engine` (each asking for `cpus` CPUs) under one overall
    progress bar."""
    from kancoin.progress import BatchProgress

    outcome = BatchOutcome()
    with BatchProgress(len(jobs), enabled=show_progress) as bar:
        fn: Callable[[Job], Outcome]
        if isinstance(engine, InlineEngine):
            # in this process: the bar also moves within each file's fit

            def fn(job: Job) -> Outcome:
                bar.start_file(job.source.name)
                return encode_job(job, config, force, progress=bar.file_progress)
        else:
            fn = _EncodeFn(config, force)
        for done in engine.run(fn, [(job,) for job in jobs], cpus=cpus):
            result = done.value
            if done.error is not None:  # the worker itself failed (e.g. killed for memory)
                job = jobs[done.index]
                result = Outcome(job, error=f"worker failed: {done.error!r}", exit_code=70)
            outcome.outcomes.append(result)
            bar.file_done(result.error is not None)
    return outcome
