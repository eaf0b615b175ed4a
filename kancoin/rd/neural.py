"""kancoin's own codecs in a sweep, through the real path a user takes.

`kancoin.encode` writes the .inr file, `kancoin.decode` reads that file back; rate is the
file's size and distortion is measured on the 8-bit decoded image, like every baseline.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

import kancoin
from kancoin.audio import INT16_SCALE, to_int16
from kancoin.errors import RateError
from kancoin.models import MODEL_SPECS
from kancoin.rd.codecs import Codec, CodecError, CodecRun
from kancoin.signals import to_uint8

# what the sweep and the command line are made of, not the encoder: changes there keep rows
NOT_ENCODER = ("rd/", "cli.py", "launch.py", "batch.py", "progress.py", "datasets.py")


@cache
def encoder_fingerprint(root: Path | None = None) -> str:
    """SHA-256 (16 hex digits) of the encoder's source files: kancoin's .py files and the C
    kernels, by path relative to the package, in sorted order; same on every clone."""
    root = root or Path(kancoin.__file__).parent
    digest = hashlib.sha256()
    files = sorted([*root.rglob("*.py"), *root.rglob("*.c")])
    for path in files:
        relative = path.relative_to(root).as_posix()
        if relative.startswith(NOT_ENCODER):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


IMAGE_ONLY = ("grid", "grid-checkerboard")  # families whose own codec refuses audio
AUDIO_ONLY = ("grid1d",)


def model_names(audio: bool = False) -> list[str]:
    """The model families this build can encode (siren, kan, fourier, ...), of images or
    of audio."""
    skip = IMAGE_ONLY if audio else AUDIO_ONLY
    return [spec.name for spec in MODEL_SPECS.values() if spec.name not in skip]


@dataclass(frozen=True)
class KancoinCodec(Codec):
    model: str = "siren"
    preset: str = "default"
    steps: int | None = None
    time_budget: float | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    suffix = ".inr"
    media = ("image", "audio")

    @property
    def name(self) -> str:
        return self.model

    @property
    def description(self) -> str:
        bound = [f"preset {self.preset}"]
        if self.steps is not None:
            bound.append(f"{self.steps} steps")
        if self.time_budget is not None:
            bound.append(f"{self.time_budget:g} s fitting budget")
        return (
            f"kancoin {kancoin.__version__} {self.model} ({', '.join(bound)}, seed {self.seed}), "
            "rate from the .inr file, distortion of its 8-bit decode"
        )

    def settings(self) -> dict:
        """The resume key: besides the options, the encoder's own source (a changed encoder
        at the same version string is a new codec) and the thread count (it changes the
        bytes; None: the codec's fixed default)."""
        return {
            "version": kancoin.__version__,
            "encoder": encoder_fingerprint(),
            "preset": self.preset,
            "steps": self.steps,
            "time_budget": self.time_budget,
            "seed": self.seed,
            "threads": self.threads,
        }

    def run(self, image: np.ndarray, target_bpp: float, stream: Path) -> CodecRun:
        result, encode_seconds, encode_cpu_seconds = self._encode(image, stream, bpp=target_bpp)
        started = time.perf_counter()
        decoded = kancoin.decode(stream, device=self.device)
        decode_seconds = time.perf_counter() - started
        return CodecRun(
            reconstruction=to_uint8(decoded),
            encode_seconds=encode_seconds,
            decode_seconds=decode_seconds,
            choice={**_choice(result), "encode_cpu_seconds": round(encode_cpu_seconds, 1)},
        )

    def run_audio(
        self, samples: np.ndarray, sample_rate: int, target_kbps: float, stream: Path
    ) -> CodecRun:
        result, encode_seconds, _ = self._encode(
            samples, stream, sample_rate=sample_rate, kbps=target_kbps
        )
        started = time.perf_counter()
        decoded = kancoin.decode(stream, device=self.device)
        decode_seconds = time.perf_counter() - started
        info = result.header.signal
        return CodecRun(
            reconstruction=to_int16(decoded).astype(np.float32) / INT16_SCALE,
            encode_seconds=encode_seconds,
            decode_seconds=decode_seconds,
            choice=_choice(result) | {"segment_frames": info.segment_frames},
        )

    def _encode(self, signal: np.ndarray, stream: Path, **rate):
        """kancoin.encode with this codec's settings: (result, wall s, CPU s of this process)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            result = kancoin.encode(
                signal,
                stream,
                force=True,
                model=self.model,
                preset=self.preset,
                steps=self.steps,
                time_budget=self.time_budget,
                seed=self.seed,
                device=self.device,
                threads=self.threads,
                **rate,
            )
        except RateError as exc:
            raise CodecError(str(exc)) from None
        return result, time.perf_counter() - started, time.process_time() - cpu_started


def _choice(result) -> dict:
    """What a kancoin encode chose, for the row."""
    return {
        "model": result.header.spec.describe(),
        "params": result.header.spec.num_params() * result.header.networks,
        "networks": result.header.networks,
        "steps": result.steps,
        "fit_seconds": round(result.fit_seconds, 3),
        "psnr_float": round(result.psnr_float, 4),
        "device": result.device,
    }
