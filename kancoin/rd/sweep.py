"""Run every (image, codec, target rate) once, in parallel over images, resumably.

Rows already in OUT/rows.jsonl for the same image content, codec, rate and settings are not
recomputed; each new row is appended the moment it is measured. Reports are rebuilt from
the rows at the end (kancoin.rd.report).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from kancoin.errors import InputError, OutputError, UsageError
from kancoin.presets import PRESETS
from kancoin.rd import report
from kancoin.rd.baselines import Jpeg2000Codec, JpegCodec
from kancoin.rd.codecs import Codec, CodecError
from kancoin.rd.metrics import ms_ssim, psnr_rgb
from kancoin.rd.neural import KancoinCodec, model_names
from kancoin.rd.results import ROWS_FILE, Key, append_row, load_rows, row_key
from kancoin.signals import load_image, to_uint8

BASELINES: dict[str, type[Codec]] = {"jpeg2000": Jpeg2000Codec, "jpeg": JpegCodec}
DEFAULT_TARGETS = (0.1, 0.2, 0.3, 0.5)
STREAMS_DIR = "bitstreams"

Log = Callable[[str], None]


def available_codecs() -> list[str]:
    """kancoin models known to this build, then the baselines."""
    return [*model_names(), *BASELINES]


@dataclass(frozen=True)
class SweepConfig:
    targets: tuple[float, ...] = DEFAULT_TARGETS
    codecs: tuple[str, ...] | None = None  # None: every available codec
    preset: str = "default"
    steps: int | None = None
    time_budget: float | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 1
    threads: int | None = None  # torch threads per worker; default: cores / workers
    force: bool = False  # recompute rows that are already done

    def __post_init__(self) -> None:
        if not self.targets or any(not 0 < t <= 64 for t in self.targets):
            raise UsageError(f"--bpp rates must be in (0, 64], got {list(self.targets)}")
        if len(set(self.targets)) != len(self.targets):
            raise UsageError("--bpp lists a rate twice")
        if self.codecs is not None:
            unknown = [c for c in self.codecs if c not in available_codecs()]
            if unknown or not self.codecs:
                raise UsageError(
                    f"unknown codec {', '.join(unknown) or '(none given)'} "
                    f"(available: {', '.join(available_codecs())})"
                )
            if len(set(self.codecs)) != len(self.codecs):
                raise UsageError("--codecs lists a codec twice")
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r} (have: {', '.join(PRESETS)})")
        if self.steps is not None and self.steps < 1:
            raise UsageError("--steps must be at least 1")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UsageError("--time-budget must be positive")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise UsageError("--threads must be at least 1")

    def codec_names(self) -> tuple[str, ...]:
        return self.codecs if self.codecs is not None else tuple(available_codecs())

    def threads_per_worker(self) -> int | None:
        if self.threads is not None or self.workers == 1:
            return self.threads  # one worker: torch's default, all cores
        return max(1, (os.cpu_count() or 1) // self.workers)

    def build_codecs(self) -> list[Codec]:
        codecs: list[Codec] = []
        for name in self.codec_names():
            if name in BASELINES:
                codecs.append(BASELINES[name]())
            else:
                codecs.append(
                    KancoinCodec(
                        model=name,
                        preset=self.preset,
                        steps=self.steps,
                        time_budget=self.time_budget,
                        seed=self.seed,
                        device=self.device,
                        threads=self.threads_per_worker(),
                    )
                )
        return codecs


@dataclass(frozen=True)
class SourceImage:
    path: Path
    name: str
    sha256: str  # of the file's bytes: a changed image is a new image
    width: int
    height: int


@dataclass(frozen=True)
class Job:
    codec: Codec
    target_bpp: float


def parse_rates(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--bpp takes comma-separated numbers, got {text!r}") from None


def parse_codecs(text: str | None) -> tuple[str, ...] | None:
    if text is None or text.strip() == "all":
        return None  # every available codec, listed in the log and the report
    return tuple(part.strip() for part in text.split(",") if part.strip())


def run_sweep(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    config: SweepConfig,
    *,
    log: Log | None = None,
) -> dict:
    """Measure what is missing, rebuild the result files, and return the summary."""
    log = log or _stderr
    started = time.perf_counter()
    load_at_start = report.load_average()
    out_dir = _prepare_out_dir(Path(out_dir))
    sources = _sources(inputs)
    codecs = config.build_codecs()
    rows_path = out_dir / ROWS_FILE
    done = {} if config.force else load_rows(rows_path)
    pending: list[tuple[SourceImage, list[Job]]] = []
    for source in sources:
        jobs = [
            Job(codec, target)
            for codec in codecs
            for target in config.targets
            if _key(source, codec, target) not in done
        ]
        if jobs:
            pending.append((source, jobs))
    total_jobs = sum(len(jobs) for _, jobs in pending)
    log(
        f"rd: {len(sources)} images x {len(codecs)} codecs "
        f"({', '.join(codec.name for codec in codecs)}) x {len(config.targets)} rates; "
        f"{total_jobs} to run, {len(sources) * len(codecs) * len(config.targets) - total_jobs} "
        f"done before"
    )
    _run_pending(pending, out_dir, config, log)
    rows = load_rows(rows_path)
    measured = {
        codec.name: [
            rows[key]
            for source in sources
            for target in config.targets
            if (key := _key(source, codec, target)) in rows
        ]
        for codec in codecs
    }
    summary = report.write_reports(
        out_dir,
        codecs=codecs,
        rows=measured,
        targets=config.targets,
        images=[source.name for source in sources],
        config=config,
        seconds=time.perf_counter() - started,
        load_at_start=load_at_start,
        log=log,
    )
    summary["rows_run"] = total_jobs  # 0: every row was done before (RUN.md keeps its run)
    return summary


def _run_pending(pending, out_dir: Path, config: SweepConfig, log: Log) -> None:
    count = len(pending)
    if config.workers == 1 or count <= 1:
        for index, (source, jobs) in enumerate(pending, 1):
            run_image(source, jobs, out_dir, log=log)
            log(f"[{index}/{count}] {source.name} done")
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=min(config.workers, count),
        mp_context=context,
        initializer=_init_worker,
        initargs=(config.threads_per_worker(),),
    )
    try:
        futures = {
            executor.submit(run_image, source, jobs, out_dir): source for source, jobs in pending
        }
        for index, future in enumerate(concurrent.futures.as_completed(futures), 1):
            future.result()
            log(f"[{index}/{count}] {futures[future].name} done")
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown()


def _init_worker(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


def run_image(source: SourceImage, jobs: list[Job], out_dir: Path, *, log: Log | None = None):
    """Run one image's jobs, appending each row the moment it is measured."""
    log = log or _stderr
    image = to_uint8(load_image(source.path))
    streams = out_dir / STREAMS_DIR / Path(source.name).stem
    streams.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        codec, target = job.codec, job.target_bpp
        stream = streams / f"{codec.name}-{target:g}{codec.suffix}"
        row = {
            "image": source.name,
            "image_sha256": source.sha256,
            "codec": codec.name,
            "target_bpp": target,
            "settings": codec.settings(),
            "width": source.width,
            "height": source.height,
        }
        try:
            result = codec.run(image, target, stream)
        except CodecError as exc:
            row["error"] = str(exc)
            append_row(out_dir / ROWS_FILE, row)
            log(f"  {source.name}  {codec.name:<9} {target:g} bpp: cannot: {exc}")
            continue
        size = stream.stat().st_size
        row.update(
            stream=str(stream.relative_to(out_dir)),
            bytes=size,
            bpp=8 * size / (source.width * source.height),
            psnr=psnr_rgb(original=image, reconstruction=result.reconstruction),
            ms_ssim=ms_ssim(original=image, reconstruction=result.reconstruction),
            encoding_time=result.encode_seconds,
            decoding_time=result.decode_seconds,
            choice=result.choice,
            load_average=report.load_average(),  # timings on a shared machine need it
        )
        append_row(out_dir / ROWS_FILE, row)
        ms = "-" if row["ms_ssim"] is None else f"{row['ms_ssim']:.4f}"
        log(
            f"  {source.name}  {codec.name:<9} {target:g} bpp -> {row['bpp']:.4f} bpp  "
            f"{row['psnr']:.2f} dB  MS-SSIM {ms}  enc {result.encode_seconds:.2f} s  "
            f"dec {result.decode_seconds:.2f} s"
        )


def _key(source: SourceImage, codec: Codec, target: float) -> Key:
    return row_key(source.name, source.sha256, codec.name, target, codec.settings())


def _sources(inputs: Sequence[str | Path]) -> list[SourceImage]:
    if not inputs:
        raise UsageError("no input images")
    sources: dict[str, SourceImage] = {}
    for item in inputs:
        path = Path(item)
        pixels = load_image(path)  # validates: exists, readable, 8-bit, no alpha
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        if path.name in sources:
            if sources[path.name].sha256 == digest:
                continue  # the same image twice
            raise InputError(f"two different inputs are named {path.name}")
        sources[path.name] = SourceImage(
            path=path.resolve(),
            name=path.name,
            sha256=digest,
            width=pixels.shape[1],
            height=pixels.shape[0],
        )
    return list(sources.values())


def _prepare_out_dir(out_dir: Path) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create ({exc.strerror or exc})") from None
    return out_dir


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
