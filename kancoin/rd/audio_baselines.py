"""The audio baselines, MP3 (LAME) and Opus, through soundfile (libsndfile), at their best.

"At their best" at a rate: every setting soundfile exposes is searched for the file of
highest PSNR whose real size, container included, is at or under the budget. MP3: the
three bitrate modes (CBR, VBR, ABR), each bisected over libsndfile's compression level, at
the clip's own sample rate and at every lower MPEG rate from 8 kHz (what LAME itself does
at low rates: at 44.1 kHz MPEG-1 cannot go below 32 kbit/s). Opus (in Ogg): the
compression level, bisected, at every Opus rate up to the clip's (48 kHz for a rate Opus
lacks, such as 44.1 kHz). A clip coded at another rate is resampled there and back by FFT
(kancoin.rd.audio_metrics.resample), and every decoded clip is aligned to the original by
cross-correlation (LAME's decoder leaves a delay at low rates) and rounded to 16 bits.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kancoin.audio import INT16_SCALE, to_int16
from kancoin.fileio import write_bytes_atomic
from kancoin.rd.audio_metrics import align_to, psnr, resample
from kancoin.rd.codecs import Codec, CodecError, CodecRun

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MP3_MODES = ("CONSTANT", "VARIABLE", "AVERAGE")
LEVEL_STEPS = 7  # bisection of the compression level in [0, 1): to 1/128
MAX_LEVEL = 127 / 128
MAX_DELAY_SECONDS = 0.1  # alignment search range


def soundfile_formats() -> dict[str, bool]:
    """Whether this soundfile (libsndfile) writes MP3 and Ogg Opus."""
    try:
        import soundfile
    except ImportError:
        return {"mp3": False, "opus": False}
    return {
        "mp3": "MPEG_LAYER_III" in soundfile.available_subtypes("MP3"),
        "opus": "OPUS" in soundfile.available_subtypes("OGG"),
    }


@dataclass(frozen=True)
class _Candidate:
    data: bytes
    rate: int  # the sample rate the codec ran at
    setting: dict


class SoundfileCodec(Codec):
    """A lossy format libsndfile writes, searched for the best file under a budget."""

    media = ("audio",)
    format: str
    subtype: str
    label: str

    @property
    def description(self) -> str:
        import soundfile

        return (
            f"{self.label} via soundfile {soundfile.__version__} "
            f"({soundfile.__libsndfile_version__}), best PSNR at or under the rate over "
            f"{self._searched()}; rate from the whole file, distortion of its 16-bit decode, "
            "delay-aligned"
        )

    def settings(self) -> dict:
        import soundfile

        return {"libsndfile": soundfile.__libsndfile_version__, "search": 1}

    def run(self, image, target_bpp, stream):
        raise CodecError(f"{self.name} codes audio only")

    def run_audio(
        self, samples: np.ndarray, sample_rate: int, target_kbps: float, stream: Path
    ) -> CodecRun:
        if not soundfile_formats()[self.name]:
            raise CodecError(f"this libsndfile cannot write {self.name}")
        started = time.perf_counter()
        budget = int(target_kbps * 1000.0 * len(samples) / sample_rate // 8)
        best: tuple[float, _Candidate, np.ndarray] | None = None
        for rate in self._rates(sample_rate):
            source = resample(samples, sample_rate, rate)
            for extra in self._modes():
                found = self._bisect(source, rate, extra, budget)
                if found is None:
                    continue
                decoded = self._decode(found.data, samples, sample_rate)
                score = psnr(original=samples, reconstruction=decoded)
                if best is None or score > best[0]:
                    best = (score, found, decoded)
        search_seconds = time.perf_counter() - started
        if best is None:
            raise CodecError(f"{self.name} cannot code this clip in {budget} bytes")
        _, chosen, _ = best
        started = time.perf_counter()
        self._encode(resample(samples, sample_rate, chosen.rate), chosen.rate, chosen.setting)
        encode_seconds = time.perf_counter() - started
        started = time.perf_counter()
        decoded = self._decode(chosen.data, samples, sample_rate)
        decode_seconds = time.perf_counter() - started
        write_bytes_atomic(stream, chosen.data)
        return CodecRun(
            reconstruction=decoded,
            encode_seconds=encode_seconds,
            decode_seconds=decode_seconds,
            choice={
                **chosen.setting,
                "sample_rate": chosen.rate,
                "budget_used": round(len(chosen.data) / budget, 4),
                "search_seconds": round(search_seconds, 3),
            },
        )

    def _bisect(self, source, rate, extra: dict, budget: int) -> _Candidate | None:
        """The lowest compression level (best quality) whose file fits, to 1/128."""
        low, high = 0.0, MAX_LEVEL
        top = self._try(source, rate, extra, high)
        if top is None or len(top) > budget:
            return None
        best = (high, top)
        bottom = self._try(source, rate, extra, low)
        if bottom is not None and len(bottom) <= budget:
            return _Candidate(bottom, rate, {**extra, "compression_level": low})
        for _ in range(LEVEL_STEPS):
            middle = (low + high) / 2
            data = self._try(source, rate, extra, middle)
            if data is not None and len(data) <= budget:
                high, best = middle, (middle, data)
            else:
                low = middle
        return _Candidate(best[1], rate, {**extra, "compression_level": round(best[0], 6)})

    def _try(self, source, rate, extra, level) -> bytes | None:
        try:
            return self._encode(source, rate, {**extra, "compression_level": level})
        except (RuntimeError, ValueError, TypeError):  # LibsndfileError: a rate it refuses
            return None

    def _encode(self, source: np.ndarray, rate: int, setting: dict) -> bytes:
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, source, rate, format=self.format, subtype=self.subtype, **setting)
        return buffer.getvalue()

    def _decode(self, data: bytes, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """The file decoded, back at the clip's rate, aligned, as 16 bits."""
        import soundfile

        decoded, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        decoded = resample(decoded, int(rate), sample_rate)
        aligned, _ = align_to(samples, decoded, max_lag=round(MAX_DELAY_SECONDS * sample_rate))
        return to_int16(aligned).astype(np.float32) / INT16_SCALE

    def _rates(self, sample_rate: int) -> list[int]:
        raise NotImplementedError

    def _modes(self) -> list[dict]:
        raise NotImplementedError

    def _searched(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Mp3Codec(SoundfileCodec):
    name = "mp3"
    suffix = ".mp3"
    format = "MP3"
    subtype = "MPEG_LAYER_III"
    label = "MP3 (LAME)"

    def _rates(self, sample_rate: int) -> list[int]:
        return [r for r in MP3_RATES if r <= sample_rate] or [min(MP3_RATES)]

    def _modes(self) -> list[dict]:
        return [{"bitrate_mode": mode} for mode in MP3_MODES]

    def _searched(self) -> str:
        return "CBR/VBR/ABR x compression level x sample rates 8 kHz..the clip's"


@dataclass(frozen=True)
class OpusCodec(SoundfileCodec):
    name = "opus"
    suffix = ".opus"
    format = "OGG"
    subtype = "OPUS"
    label = "Opus in Ogg (libopus)"

    def _rates(self, sample_rate: int) -> list[int]:
        rates = [r for r in OPUS_RATES if r <= sample_rate]
        if sample_rate not in OPUS_RATES:
            rates.append(min(r for r in OPUS_RATES if r >= min(sample_rate, 48000)))
        return sorted(set(rates)) or [min(OPUS_RATES)]

    def _modes(self) -> list[dict]:
        return [{}]

    def _searched(self) -> str:
        return "compression level x Opus sample rates 8 kHz..the clip's"
