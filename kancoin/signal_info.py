"""What every signal kind's header record provides (kancoin.signals.ImageInfo,
kancoin.audio.AudioInfo): its explicit kind id and header fields, how many networks code
it, and its rate unit."""

from __future__ import annotations

from typing import ClassVar

from kancoin.fields import HeaderField


class SignalInfo:
    """Base of the frozen dataclasses that describe a coded signal in the .inr header."""

    kind: ClassVar[int]  # explicit, stable id written in the file
    coord_dims: ClassVar[int]  # coordinates per sample the networks read
    header_fields: ClassVar[tuple[HeaderField, ...]]
    rate_unit: ClassVar[str]

    @property
    def samples(self) -> int:
        """Pixels or frames: what the rate is counted per."""
        raise NotImplementedError

    @property
    def networks(self) -> int:
        raise NotImplementedError

    def rate(self, bits: float) -> float:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError
