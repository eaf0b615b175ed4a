"""Named speed/quality trade-offs, each a list of training phases (as Cool-chic describes its
trainer). Figures in docs/RESULTS.md are measured with bench/ scripts.

A fit phase's length is counted in coordinate passes (steps x batch fraction): a model
family or signal kind that trains with another batch fraction (KAN, audio: 20 %) takes as
many steps as give it the same passes. Small batches measured fastest for SIREN images
(docs/SAMPLING.md): at 45 s on kodim15, 2.5 % batches reached 29.44 dB against 27.97 dB with
20 %. A fine-tuning phase's length is a share of the fit's steps; it runs only where the
plan (kancoin.plan) finds something to recover.
"""

from __future__ import annotations

from dataclasses import dataclass

QUANTIZATION_MODES = ("float", "straight-through")


@dataclass(frozen=True)
class PhaseSpec:
    """One stretch of training, as a preset states it; kancoin.plan makes it concrete."""

    name: str
    passes: float | None = None  # coordinate passes (steps x batch fraction); or...
    share: float | None = None  # ...steps as a share of the first phase's
    lr: float | None = None  # peak learning rate (SIREN scale); or...
    lr_ratio: float = 1.0  # ...a share of the first phase's
    warmup: float | None = None  # None: the config's (kancoin.config.TrainingOptions.warmup)
    batch_fraction: float | None = None  # None: the first phase's
    quantization: str = "float"  # "float", or "straight-through" on the rounded weights

    def __post_init__(self) -> None:
        if (self.passes is None) == (self.share is None):
            raise ValueError(f"phase {self.name}: give passes or share, not both")
        if self.quantization not in QUANTIZATION_MODES:
            raise ValueError(f"phase {self.name}: unknown quantization {self.quantization!r}")


@dataclass(frozen=True)
class Preset:
    name: str
    phases: tuple[PhaseSpec, ...]
    max_layers: int  # depth cap when the architecture is planned from the rate

    @property
    def fit(self) -> PhaseSpec:
        return self.phases[0]

    @property
    def steps(self) -> int:
        """The fit's steps at its own batch fraction."""
        return round(self.fit.passes / self.fit.batch_fraction)

    @property
    def lr(self) -> float:
        return self.fit.lr

    @property
    def batch_fraction(self) -> float:
        return self.fit.batch_fraction

    @property
    def qat_share(self) -> float:
        """Fine-tuning steps as a share of the fit's (0 without a fine-tuning phase)."""
        return sum(p.share for p in self.phases[1:] if p.quantization != "float")

    def steps_at(self, fraction: float) -> int:
        """Fit steps that give the same coordinate passes as the preset at `fraction`."""
        return max(1, round(self.steps * self.batch_fraction / fraction))


def _phases(steps: int, lr: float) -> tuple[PhaseSpec, ...]:
    batch = 0.025
    return (
        PhaseSpec("fit", passes=steps * batch, lr=lr, batch_fraction=batch),
        # the rounded network, at a tenth of the rate: +0.25 dB on kodim07/15/23 (docs/RD.md)
        PhaseSpec("fine-tune", share=0.1, lr_ratio=0.1, quantization="straight-through"),
    )


PRESETS: dict[str, Preset] = {
    # about 25 s, 100 s and 7 min of fitting a Kodak image on 2 idle cores
    "fast": Preset("fast", _phases(1000, 2e-3), max_layers=6),
    "default": Preset("default", _phases(4000, 1.5e-3), max_layers=8),
    "best": Preset("best", _phases(16000, 1e-3), max_layers=10),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (have: {', '.join(PRESETS)})") from None
