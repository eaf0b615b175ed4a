"""A header field as the .inr format writes it: bitstring type and allowed range.

Signal kinds (kancoin.signals, kancoin.audio) and model families (kancoin.models) declare
their header fields with it; kancoin.bitstream packs and bounds-checks them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeaderField:
    name: str
    fmt: str  # bitstring token, e.g. "uint:8" or "floatle:32"
    low: float
    high: float
