"""Run every (image, codec, target rate) once, in parallel over images, resumably.

Audio clips (WAV/FLAC, rates in kbps) run the same way: one row per (clip, codec, kbps),
measured by kancoin.rd.audio_metrics against MP3 and Opus (kancoin.rd.audio_baselines).

Rows already in OUT/rows.jsonl for the same image content, codec, rate and settings are not
recomputed; each new row is appended the moment it is measured. Reports are rebuilt from
the rows at the end (kancoin.rd.report).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kancoin import adapters
from kancoin.audio import is_audio_path, load_audio
from kancoin.engines import ENGINES, make_engine
from kancoin.errors import InputError, UsageError
from kancoin.fileio import ensure_directory, write_bytes_atomic
from kancoin.presets import PRESETS
from kancoin.rd import audio_metrics, report
from kancoin.rd.audio_baselines import Mp3Codec, OpusCodec
from kancoin.rd.baselines import Jpeg2000Codec, JpegCodec
from kancoin.rd.codecs import Codec, CodecError
from kancoin.rd.metrics import ms_ssim, psnr_rgb
from kancoin.rd.neural import KancoinCodec, model_names
from kancoin.rd.results import ROWS_FILE, Key, append_row, load_rows, row_key
from kancoin.signals import load_image, to_uint8

BASELINES: dict[str, type[Codec]] = {"jpeg2000": Jpeg2000Codec, "jpeg": JpegCodec}
AUDIO_BASELINES: dict[str, type[Codec]] = {"mp3": Mp3Codec, "opus": OpusCodec}
DEFAULT_TARGETS = (0.1, 0.2, 0.3, 0.5)
DEFAULT_KBPS = (16.0, 32.0, 64.0)
MAX_KBPS = 10_000.0
STREAMS_DIR = "bitstreams"

Log = Callable[[str], None]


def available_codecs(audio: bool = False) -> list[str]:
    """kancoin models known to this build, then the baselines (of images, or of audio)."""
    if audio:
        return [*model_names(audio=True), *AUDIO_BASELINES]
    return [*model_names(), *BASELINES]


@dataclass(frozen=True)
class SweepConfig:
    targets: tuple[float, ...] = DEFAULT_TARGETS
    codecs: tuple[str, ...] | None = None  # None: every available codec
    preset: str = "default"
    steps: int | None = None
    # per kancoin family, overriding `steps` (families train at different speeds: the
    # audio sweep fits each SIREN segment 300 steps and the 1-D grid 600, docs/AUDIO.md)
    codec_steps: tuple[tuple[str, int], ...] = ()
    time_budget: float | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 1
    threads: int | None = None  # torch threads per worker; default: cores / workers
    force: bool = False  # recompute rows that are already done
    engine: str = "local"  # where rows run: kancoin.engines (local pool or a Ray cluster)
    ray_address: str | None = None  # with engine "ray": None joins $RAY_ADDRESS or starts one
    audio: bool = False  # targets are kbps and inputs WAV/FLAC clips

    def __post_init__(self) -> None:
        option, high = ("--kbps", MAX_KBPS) if self.audio else ("--bpp", 64)
        if not self.targets or any(not 0 < t <= high for t in self.targets):
            raise UsageError(f"{option} rates must be in (0, {high:g}], got {list(self.targets)}")
        if len(set(self.targets)) != len(self.targets):
            raise UsageError(f"{option} lists a rate twice")
        if self.codecs is not None:
            have = available_codecs(self.audio)
            unknown = [c for c in self.codecs if c not in have]
            if unknown or not self.codecs:
                raise UsageError(
                    f"unknown codec {', '.join(unknown) or '(none given)'} "
                    f"for {'audio' if self.audio else 'images'} (available: {', '.join(have)})"
                )
            if len(set(self.codecs)) != len(self.codecs):
                raise UsageError("--codecs lists a codec twice")
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r} (have: {', '.join(PRESETS)})")
        if self.steps is not None and self.steps < 1:
            raise UsageError("--steps must be at least 1")
        if any(steps < 1 for _, steps in self.codec_steps):
            raise UsageError("--codec-steps must be at least 1")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UsageError("--time-budget must be positive")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise UsageError("--threads must be at least 1")
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r} (have: {', '.join(ENGINES)})")

    def codec_names(self) -> tuple[str, ...]:
        return self.codecs if self.codecs is not None else tuple(available_codecs(self.audio))

    def threads_per_worker(self) -> int | None:
        """Torch threads per row; a Ray task asks for that many CPUs (one, unless told)."""
        if self.engine == "ray":
            return self.threads or 1
        if self.threads is not None or self.workers == 1:
            return self.threads  # one local worker: torch's default, all cores
        return max(1, (os.cpu_count() or 1) // self.workers)

    def build_codecs(self) -> list[Codec]:
        codecs: list[Codec] = []
        for name in self.codec_names():
            if name in BASELINES:
                codecs.append(BASELINES[name]())
            elif name in AUDIO_BASELINES:
                codecs.append(AUDIO_BASELINES[name]())
            else:
                codecs.append(
                    KancoinCodec(
                        model=name,
                        preset=self.preset,
                        steps=dict(self.codec_steps).get(name, self.steps),
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
class SourceClip:
    path: Path
    name: str
    sha256: str  # of the file's bytes
    sample_rate: int
    frames: int
    channels: int


Source = SourceImage | SourceClip


def parse_rates(text: str, option: str = "--bpp") -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, got {text!r}") from None


def parse_codec_steps(text: str | None) -> tuple[tuple[str, int], ...]:
    """'siren=300,grid1d=600' -> (('siren', 300), ('grid1d', 600))."""
    if not text:
        return ()
    pairs = []
    for part in text.split(","):
        name, _, steps = part.partition("=")
        try:
            pairs.append((name.strip(), int(steps)))
        except ValueError:
            raise UsageError(f"--codec-steps takes CODEC=STEPS,..., got {text!r}") from None
    return tuple(pairs)


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
    sources = _sources(inputs, audio=config.audio)
    codecs = config.build_codecs()
    rows_path = out_dir / ROWS_FILE
    done = {} if config.force else _done(load_rows(rows_path))
    tasks = [
        RowTask(source, codec, target)
        for source in sources
        for codec in codecs
        for target in config.targets
        if _key(source, codec, target) not in done
    ]
    total_jobs = len(tasks)
    what = "clips" if config.audio else "images"
    log(
        f"rd: {len(sources)} {what} x {len(codecs)} codecs "
        f"({', '.join(codec.name for codec in codecs)}) x {len(config.targets)} rates; "
        f"{total_jobs} to run, {len(sources) * len(codecs) * len(config.targets) - total_jobs} "
        f"done before"
    )
    _run_pending(tasks, out_dir, config, log)
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
        audio=config.audio,
    )
    summary["rows_run"] = total_jobs  # 0: every row was done before (RUN.md keeps its run)
    return summary


def _run_pending(tasks: list[RowTask], out_dir: Path, config: SweepConfig, log: Log) -> None:
    """Run every task on the configured engine; this process alone writes rows and streams."""
    if not tasks:
        return
    threads = config.threads_per_worker()
    engine = make_engine(
        config.engine,
        workers=config.workers,
        threads=threads or 1,
        address=config.ray_address,
    )
    failed = 0
    with engine:
        images: dict[str, object] = {}
        for task in tasks:
            if task.source.name not in images:
                images[task.source.name] = engine.share(_load(task.source))
        calls = [(task, images[task.source.name]) for task in tasks]
        for count, outcome in enumerate(engine.run(measure_row, calls, cpus=threads or 1), 1):
            task = tasks[outcome.index]
            if outcome.error is not None:
                failed += 1
                row = _row_head(task) | {"error": _describe(outcome.error), "retry": True}
                append_row(out_dir / ROWS_FILE, row)
                line = f"{_label(task)}: failed: {row['error']} (retried on the next run)"
            else:
                line = _record(outcome.value, out_dir)
            log(f"[{count}/{len(tasks)}] {line}")
    if failed:
        log(f"rd: {failed} of {len(tasks)} rows failed; run the same command again to retry them")


def _load(source: Source) -> np.ndarray:
    if isinstance(source, SourceClip):
        return load_audio(source.path)[0]
    return to_uint8(load_image(source.path))


@dataclass(frozen=True)
class RowTask:
    """One row of a sweep: an image or clip (by name and SHA-256), a codec and a target rate
    (bpp for images, kbps for clips)."""

    source: Source
    codec: Codec
    target_bpp: float


@dataclass(frozen=True)
class RowResult:
    row: dict
    stream_name: str  # file name under OUT/bitstreams/IMAGE/
    stream: bytes | None  # the bitstream's bytes; None for a row that records an error


def measure_row(task: RowTask, image: np.ndarray) -> RowResult:
    """Code `image` (uint8, the pixels of task.source) once; runs on any worker.

    The bitstream is written to a private temporary file and returned as bytes, so a worker
    on another machine needs no access to the sweep's output directory.
    """
    if isinstance(task.source, SourceClip):
        return _measure_clip(task, image)
    codec, target = task.codec, task.target_bpp
    row = _row_head(task)
    with tempfile.TemporaryDirectory(prefix="kancoin-rd-") as scratch:
        stream = Path(scratch) / _stream_name(task)
        try:
            result = codec.run(image, target, stream)
        except CodecError as exc:
            return RowResult(row | {"error": str(exc)}, stream.name, None)
        data = stream.read_bytes()
    width, height = task.source.width, task.source.height
    row.update(
        bytes=len(data),
        bpp=8 * len(data) / (width * height),
        psnr=psnr_rgb(original=image, reconstruction=result.reconstruction),
        ms_ssim=ms_ssim(original=image, reconstruction=result.reconstruction),
        encoding_time=result.encode_seconds,
        decoding_time=result.decode_seconds,
        choice=result.choice,
        load_average=report.load_average(),  # timings on a shared machine need it
    )
    return RowResult(row, stream.name, data)


def _measure_clip(task: RowTask, samples: np.ndarray) -> RowResult:
    """measure_row for a clip: rate in kbps, PSNR, SNR, LSD and the error at the segment
    boundaries SIREN has at this rate (the same positions for every codec)."""
    codec, kbps, source = task.codec, task.target_bpp, task.source
    row = _row_head(task)
    with tempfile.TemporaryDirectory(prefix="kancoin-rd-") as scratch:
        stream = Path(scratch) / _stream_name(task)
        try:
            result = codec.run_audio(samples, source.sample_rate, kbps, stream)
        except CodecError as exc:
            return RowResult(row | {"error": str(exc)}, stream.name, None)
        data = stream.read_bytes()
    decoded = result.reconstruction
    pair = {"original": samples, "reconstruction": decoded}
    boundaries = segment_boundaries(source.frames, source.sample_rate, kbps)
    row.update(
        bytes=len(data),
        kbps=8 * len(data) / (source.frames / source.sample_rate) / 1000.0,
        psnr=audio_metrics.psnr(**pair),
        snr=audio_metrics.waveform_snr(**pair),
        lsd=audio_metrics.log_spectral_distance(**pair, sample_rate=source.sample_rate),
        **audio_metrics.boundary_error(
            **pair,
            boundaries=boundaries,
            half_width=round(audio_metrics.BOUNDARY_SECONDS * source.sample_rate),
        ),
        boundaries=len(boundaries),
        encoding_time=result.encode_seconds,
        decoding_time=result.decode_seconds,
        choice=result.choice,
        load_average=report.load_average(),
    )
    return RowResult(row, stream.name, data)


def segment_boundaries(frames: int, sample_rate: int, kbps: float) -> list[int]:
    """Where kancoin's segmented families cut a clip at this rate by default (the frames
    that start a segment, docs/AUDIO.md): where clicks would be."""
    longest = max(1, round(adapters.segment_seconds(kbps) * sample_rate))
    segments = math.ceil(frames / longest)
    length = math.ceil(frames / segments)
    return [i * length for i in range(1, segments)]


def _record(result: RowResult, out_dir: Path) -> str:
    """Write a finished row's bitstream, then append the row (the resume state); its log line."""
    row = result.row
    clip = "clip" in row
    if clip:
        label = f"{row['clip']}  {row['codec']:<9} {row['target_kbps']:g} kbps"
    else:
        label = f"{row['image']}  {row['codec']:<9} {row['target_bpp']:g} bpp"
    if result.stream is None:
        append_row(out_dir / ROWS_FILE, row)
        return f"{label}: cannot: {row['error']}"
    name = row["clip"] if clip else row["image"]
    stream = out_dir / STREAMS_DIR / Path(name).stem / result.stream_name
    stream.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(stream, result.stream)
    row["stream"] = str(stream.relative_to(out_dir))
    append_row(out_dir / ROWS_FILE, row)
    if clip:
        return (
            f"{label} -> {row['kbps']:.2f} kbps  {row['psnr']:.2f} dB  SNR {row['snr']:.2f}  "
            f"LSD {row['lsd']:.2f}  enc {row['encoding_time']:.2f} s  "
            f"dec {row['decoding_time']:.2f} s"
        )
    ms = "-" if row["ms_ssim"] is None else f"{row['ms_ssim']:.4f}"
    return (
        f"{label} -> {row['bpp']:.4f} bpp  {row['psnr']:.2f} dB  MS-SSIM {ms}  "
        f"enc {row['encoding_time']:.2f} s  dec {row['decoding_time']:.2f} s"
    )


def _row_head(task: RowTask) -> dict:
    source = task.source
    if isinstance(source, SourceClip):
        return {
            "clip": source.name,
            "clip_sha256": source.sha256,
            "codec": task.codec.name,
            "target_kbps": task.target_bpp,
            "settings": task.codec.settings(),
            "sample_rate": source.sample_rate,
            "frames": source.frames,
            "channels": source.channels,
        }
    return {
        "image": source.name,
        "image_sha256": source.sha256,
        "codec": task.codec.name,
        "target_bpp": task.target_bpp,
        "settings": task.codec.settings(),
        "width": source.width,
        "height": source.height,
    }


def _stream_name(task: RowTask) -> str:
    return f"{task.codec.name}-{task.target_bpp:g}{task.codec.suffix}"


def _label(task: RowTask) -> str:
    unit = "kbps" if isinstance(task.source, SourceClip) else "bpp"
    return f"{task.source.name} {task.codec.name} {task.target_bpp:g} {unit}"


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _done(rows: dict[Key, dict]) -> dict[Key, dict]:
    """Rows that need no rerun: measured, or refused by their codec (a task that crashed is
    retried on the next run)."""
    return {key: row for key, row in rows.items() if not row.get("retry")}


def _key(source: Source, codec: Codec, target: float) -> Key:
    return row_key(source.name, source.sha256, codec.name, target, codec.settings())


def _sources(inputs: Sequence[str | Path], *, audio: bool = False) -> list[Source]:
    if not inputs:
        raise UsageError("no input clips" if audio else "no input images")
    sources: dict[str, Source] = {}
    for item in inputs:
        path = Path(item)
        if is_audio_path(path) != audio:
            raise UsageError(
                f"{path.name}: give audio (WAV/FLAC) with --kbps and images with --bpp, "
                "not both in one sweep"
            )
        source: Source
        if audio:
            samples, rate = load_audio(path)  # validates: exists, readable, PCM or float
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            source = SourceClip(path.resolve(), path.name, digest, rate, *samples.shape)
        else:
            pixels = load_image(path)  # validates: exists, readable, 8-bit, no alpha
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            source = SourceImage(
                path=path.resolve(),
                name=path.name,
                sha256=digest,
                width=pixels.shape[1],
                height=pixels.shape[0],
            )
        if path.name in sources:
            if sources[path.name].sha256 == digest:
                continue  # the same input twice
            raise InputError(f"two different inputs are named {path.name}")
        sources[path.name] = source
    return list(sources.values())


def _prepare_out_dir(out_dir: Path) -> Path:
    return ensure_directory(out_dir, not_a_directory="exists and is not a directory")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
