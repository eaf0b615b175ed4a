"""Named speed/quality trade-offs. Figures in README.md are measured with bench/ scripts.

A preset's length is counted in coordinate passes (steps x batch fraction): a model family or
signal kind that trains with another batch fraction (KAN, audio: 20 %) takes as many steps as
give it the same passes. Small batches measured fastest for SIREN images (docs/SAMPLING.md):
at 45 s on kodim15, 2.5 % batches reached 29.44 dB against 27.97 dB with 20 %.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    steps: int
    lr: float
    batch_fraction: float
    max_layers: int  # depth cap when the architecture is planned from the rate
    qat_share: float = 0.1  # quantization-aware fine-tuning steps, as a share of the fit's

    def steps_at(self, fraction: float) -> int:
        """Steps that give the same coordinate passes as the preset at `fraction`."""
        return max(1, round(self.steps * self.batch_fraction / fraction))


PRESETS: dict[str, Preset] = {
    # about 25 s, 100 s and 7 min of fitting a Kodak image on 2 idle cores
    "fast": Preset("fast", steps=1000, lr=2e-3, batch_fraction=0.025, max_layers=6),
    "default": Preset("default", steps=4000, lr=1.5e-3, batch_fraction=0.025, max_layers=8),
    "best": Preset("best", steps=16000, lr=1e-3, batch_fraction=0.025, max_layers=10),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (have: {', '.join(PRESETS)})") from None
