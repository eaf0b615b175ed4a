"""Named speed/quality trade-offs. Figures in README.md are measured with bench/ scripts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    steps: int
    lr: float
    batch_fraction: float
    max_layers: int  # depth cap when the architecture is planned from the rate


PRESETS: dict[str, Preset] = {
    "fast": Preset("fast", steps=200, lr=2e-3, batch_fraction=0.2, max_layers=6),
    "default": Preset("default", steps=800, lr=1.5e-3, batch_fraction=0.2, max_layers=8),
    "best": Preset("best", steps=3000, lr=1e-3, batch_fraction=0.2, max_layers=10),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (have: {', '.join(PRESETS)})") from None
