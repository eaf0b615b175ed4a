"""Audio I/O, time coordinates and audio metrics: everything that touches samples on disk.

A clip is float32 frames x channels in [-1, 1]. The network sees it mapped to [0, 1]
(`to_unit`), so the codec's [0, 1] machinery (clamping, PSNR, bit allocation) measures audio
in the unit published INR audio results use. Long clips are cut into segments of
`segment_frames`; sample k sits at time k / rate, and each segment maps its own span of time
onto [-1, 1), so any output rate samples the same continuous function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from kancoin.errors import InputError, OutputError, UsageError
from kancoin.fields import HeaderField
from kancoin.signal_info import SignalInfo

if TYPE_CHECKING:
    import torch  # imported where used: reading a header must not load torch


@dataclass(frozen=True)
class AudioInfo(SignalInfo):
    """A clip cut into segments of `segment_frames` frames, one network each (the last
    segment may be shorter); channels are the outputs of each network."""

    kind: ClassVar[int] = 2
    coord_dims: ClassVar[int] = 1
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        HeaderField("sample_rate", "uint:20", 1, 768_000),
        HeaderField("frames", "uint:32", 1, (1 << 32) - 1),
        HeaderField("channels", "uint:4", 1, 8),
        HeaderField("segment_frames", "uint:32", 1, (1 << 32) - 1),
    )
    rate_unit: ClassVar[str] = "kbps"
    sample_rate: int
    frames: int
    channels: int
    segment_frames: int

    @property
    def samples(self) -> int:
        return self.frames

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def networks(self) -> int:
        return math.ceil(self.frames / self.segment_frames)

    def rate(self, bits: float) -> float:
        """Rate in `rate_unit`: kilobits per second of audio."""
        return bits / self.duration / 1000.0

    def describe(self) -> str:
        return (
            f"audio {self.duration:.3f} s at {self.sample_rate} Hz x{self.channels} "
            f"({self.networks} segments of {self.segment_frames} frames)"
        )


_LIMITS = {f.name: int(f.high) for f in AudioInfo.header_fields}
MAX_CHANNELS = _LIMITS["channels"]
MAX_SAMPLE_RATE = _LIMITS["sample_rate"]
MAX_INPUT_FRAMES = _LIMITS["frames"]
READ_SUBTYPES = ("PCM_16", "PCM_24", "FLOAT", "DOUBLE")
READ_FORMATS = ("WAV", "WAVEX", "FLAC")
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
AUDIO_SUFFIXES = (".wav", ".flac")
INT16_SCALE = 32768.0  # libsndfile's convention: int16 / 32768 in [-1, 1)
FLAC_MAX_RATE = 655350
WRITE_CHUNK = 1 << 16  # frames converted to 16 bits at a time


def _soundfile():
    try:
        import soundfile
    except ImportError:
        raise InputError(
            "audio needs the soundfile package: pip install 'kancoin[audio]'"
        ) from None
    return soundfile


def is_audio_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV or FLAC file as (float32 frames x channels in [-1, 1], sample rate)."""
    sf = _soundfile()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        info = sf.info(str(path))
        if info.format not in READ_FORMATS:
            raise InputError(f"{path}: {info.format} audio is not supported; use WAV or FLAC")
        if info.subtype not in READ_SUBTYPES:
            raise InputError(
                f"{path}: {info.subtype} samples are not supported; use 16/24-bit PCM or float"
            )
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        raise InputError(f"{path}: not audio soundfile can read ({_one_line(exc)})") from None
    return check_samples(samples, rate, what=str(path)), int(rate)


def check_samples(samples, sample_rate, *, what: str = "audio") -> np.ndarray:
    """Validate an in-memory clip (frames or frames x channels; int16 or float in [-1, 1])."""
    if not isinstance(sample_rate, int | np.integer) or not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(f"{what}: sample rate must be an integer in 1..{MAX_SAMPLE_RATE}")
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InputError(f"{what}: expected frames or frames x channels, got {array.shape}")
    frames, channels = array.shape
    if frames == 0:
        raise InputError(f"{what}: the clip is empty")
    if frames > MAX_INPUT_FRAMES:
        raise InputError(f"{what}: {frames} frames is longer than we encode")
    if not 1 <= channels <= MAX_CHANNELS:
        raise InputError(f"{what}: {channels} channels; kancoin codes 1 to {MAX_CHANNELS}")
    if array.dtype == np.int16:
        return array.astype(np.float32) / INT16_SCALE
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{what}: samples must be int16 or float, got {array.dtype}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or np.abs(array).max() > 1.0:
        raise InputError(f"{what}: float samples must be finite and within [-1, 1]")
    return array


def audio_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise UsageError(f"cannot tell the audio format from {Path(path).name!r}; use .wav")
    return WRITE_FORMATS[suffix]


def check_writable(path: str | Path, channels: int, rate: int | None = None) -> None:
    """Refuse, before any work, an output format that cannot hold these channels or this
    rate (FLAC: 1..8 channels, rates up to 655350 Hz and above 65535 only in tens of Hz,
    libFLAC's streamable subset, which libsndfile writes)."""
    name = Path(path).name
    fmt = audio_format(path)
    if not 1 <= channels <= MAX_CHANNELS:
        raise UsageError(f"{name}: {fmt} output of {channels} channels is not supported")
    if rate is None or fmt != "FLAC":
        return
    if not 1 <= rate <= FLAC_MAX_RATE or (rate > 65535 and rate % 10):
        raise UsageError(
            f"{name}: FLAC cannot hold a sample rate of {rate} Hz (at most {FLAC_MAX_RATE}, "
            "and above 65535 only multiples of 10); use .wav or --rate"
        )


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Round a float clip in [-1, 1] to 16 bits, the way every decoded clip is measured."""
    return np.clip(np.rint(samples * INT16_SCALE), -32768, 32767).astype(np.int16)


def save_audio(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM, WAV or FLAC by the path's suffix (callers write atomically)."""
    sf = _soundfile()
    check_writable(path, samples.shape[1], sample_rate)
    pcm = np.empty(samples.shape, dtype=np.int16)
    for start in range(0, len(samples), WRITE_CHUNK):  # float temporaries stay small
        pcm[start : start + WRITE_CHUNK] = to_int16(samples[start : start + WRITE_CHUNK])
    try:
        sf.write(str(path), pcm, sample_rate, subtype="PCM_16", format=audio_format(path))
    except (RuntimeError, TypeError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        raise OutputError(f"{path}: cannot write audio ({_one_line(exc)})") from None


def to_unit(samples: np.ndarray) -> np.ndarray:
    """Waveform [-1, 1] -> network range [0, 1]."""
    return (samples + 1.0) * 0.5


def from_unit(values: np.ndarray) -> np.ndarray:
    return values * 2.0 - 1.0


def segment_count(frames: int, segment_frames: int) -> int:
    return math.ceil(frames / segment_frames)


def segment_coords(positions: torch.Tensor, segment: int, segment_frames: int) -> torch.Tensor:
    """Times in input frames -> the segment's coordinates in [-1, 1), shape (n, 1)."""
    start = segment * segment_frames
    import torch

    return ((positions - start) * (2.0 / segment_frames) - 1.0).to(torch.float32)[:, None]


def output_frames(frames: int, sample_rate: int, out_rate: int) -> int:
    """Frames at `out_rate` over the same duration."""
    return max(1, round(frames * out_rate / sample_rate))


def output_positions(frames: int, sample_rate: int, out_rate: int) -> np.ndarray:
    """Times (in input frames, float64) of every output sample over the clip's duration."""
    count = output_frames(frames, sample_rate, out_rate)
    return np.arange(count, dtype=np.float64) * (sample_rate / out_rate)


def snr(*, original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of two waveforms (keyword-only: never swapped)."""
    if original.shape != reconstruction.shape:
        raise ValueError(f"shape mismatch: {original.shape} vs {reconstruction.shape}")
    signal = float(np.sum(original.astype(np.float64) ** 2))
    noise = float(np.sum((original.astype(np.float64) - reconstruction) ** 2))
    if noise == 0:
        return float("inf")
    return float("-inf") if signal == 0 else 10.0 * math.log10(signal / noise)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
