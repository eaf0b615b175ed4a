"""The one interface every codec in a sweep has: code an image at a target rate, once.

A codec writes its bitstream to a file, so rate is always measured from real bytes on disk,
and hands back the 8-bit image decoded from exactly those bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kancoin.errors import KancoinError


class CodecError(KancoinError):
    """A codec cannot code this image at this rate (recorded as a failed row, not retried)."""


@dataclass(frozen=True)
class CodecRun:
    reconstruction: np.ndarray  # uint8 HxWxC (audio: float32 frames x channels, 16-bit
    # values) decoded from the written file
    encode_seconds: float  # one encode at the chosen setting (rate searches not included)
    decode_seconds: float
    choice: dict = field(default_factory=dict)  # what the codec picked to meet the rate


class Codec(ABC):
    """A codec under test. Instances are frozen dataclasses, so they pickle to workers."""

    name: str
    suffix: str  # of the bitstream files it writes
    media: tuple[str, ...] = ("image",)  # what it codes: "image", "audio"

    @property
    @abstractmethod
    def description(self) -> str:
        """One line for result files: what ran, with which library and settings."""

    @abstractmethod
    def settings(self) -> dict:
        """Everything besides image and rate that changes the result (the resume key)."""

    @abstractmethod
    def run(self, image: np.ndarray, target_bpp: float, stream: Path) -> CodecRun:
        """Code uint8 HxWxC `image` at no more than `target_bpp` into the file `stream`."""

    def run_audio(
        self, samples: np.ndarray, sample_rate: int, target_kbps: float, stream: Path
    ) -> CodecRun:
        """Code a float32 frames x channels clip at no more than `target_kbps` into `stream`;
        the reconstruction is the decoded clip at the same rate, rounded to 16 bits."""
        raise CodecError(f"{self.name} codes images only")


def budget_bytes(image: np.ndarray, target_bpp: float) -> int:
    """The largest file, in bytes, that meets `target_bpp` on this image."""
    height, width = image.shape[:2]
    return int(target_bpp * height * width // 8)
