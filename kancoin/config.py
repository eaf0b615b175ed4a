"""What a caller asks of an encode: four frozen groups, validated once, in library terms.

- rate: how big the file may be (bpp for images, kbps for audio) and how weights are coded;
- model: which family and shape, and how the signal is cut into networks;
- training: how long and how the networks are fitted (a preset and its overrides);
- runtime: where it runs.

`EncodeConfig.of(bpp=0.3, steps=300)` and `config.with_options(...)` take the flat names the
Python API and the CLI use (OPTION_GROUPS); the plan (kancoin.plan) turns a config and a
signal into concrete sizes and phases. Messages name the option as the API spells it; the
CLI's flags are the same names with dashes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from kancoin.errors import UsageError
from kancoin.fit import SAMPLERS, SamplerOptions
from kancoin.fit.select import STEP_KINDS
from kancoin.fit.trainer import DEFAULT_WARMUP
from kancoin.models import spec_class_by_name
from kancoin.presets import PRESETS


class DefaultRate(float):
    """A rate nobody asked for (the default); only an explicit rate of the wrong unit is
    an error, e.g. bpp on audio."""


DEFAULT_BPP = DefaultRate(0.3)
DEFAULT_KBPS = DefaultRate(32.0)


def explicit(rate) -> bool:
    """Whether a rate was asked for (not None, not the default)."""
    return rate is not None and not isinstance(rate, DefaultRate)


@dataclass(frozen=True)
class RateOptions:
    bpp: float | None = DEFAULT_BPP  # images; None: no rate target
    kbps: float | None = DEFAULT_KBPS  # audio
    bits: int | None = None  # None: rate-distortion allocation per tensor; N: all at N bits
    # quality target in dB (images: PSNR; audio: PSNR of the waveform in [0, 1]): the fit
    # stops once it is reached and the file spends no more bits than it needs; a rate given
    # with it is a cap, and the default rate is then none
    psnr: float | None = None

    def __post_init__(self) -> None:
        _number(self, "bpp", 0, 64, low_open=True)
        _number(self, "kbps", 0, 10_000, low_open=True)
        _integer(self, "bits", 2, 16)
        _number(self, "psnr", 1, 200)

    def resolved(self) -> RateOptions:
        """With a quality target only an explicit rate caps the file: defaults drop out."""
        if self.psnr is None:
            return self
        return dataclasses.replace(
            self,
            bpp=self.bpp if explicit(self.bpp) else None,
            kbps=self.kbps if explicit(self.kbps) else None,
        )


@dataclass(frozen=True)
class ModelOptions:
    model: str = "siren"
    layers: int | None = None  # with width: an explicit shape instead of the rate plan's
    width: int | None = None
    w0_first: float | None = None  # None: the signal kind's default (SIREN families)
    segment_seconds: float | None = None  # audio: seconds per network; None: from the rate
    keep_alpha: bool = False  # images: code an alpha channel as a fourth channel
    # a cohort prior (kancoin.prior): a name in the search path or a .kprior path; None: none
    prior: str | None = None
    freeze: int | None = None  # layers the prior supplies; None: the stable-rank rule

    def __post_init__(self) -> None:
        if not isinstance(self.model, str):
            raise UsageError(f"model must be a name, got {self.model!r}")
        try:
            spec_class_by_name(self.model)
        except KeyError:
            raise UsageError(f"unknown model {self.model!r}") from None
        if (self.layers is None) != (self.width is None):
            raise UsageError("layers and width go together")
        _integer(self, "layers", 1, 63)
        _integer(self, "width", 1, 4095)
        _number(self, "w0_first", 1e-3, 1e6)
        _number(self, "segment_seconds", 0, 60, low_open=True)
        if self.prior is not None:
            if not isinstance(self.prior, str) or not self.prior:
                raise UsageError(f"prior must be a name or a path, got {self.prior!r}")
            if self.model != "siren":
                raise UsageError(f"priors are SIREN bodies; model {self.model!r} takes none")
        _integer(self, "freeze", 0, 63)
        if self.freeze is not None and self.prior is None:
            raise UsageError("freeze needs a prior")


@dataclass(frozen=True)
class TrainingOptions:
    preset: str = "default"
    steps: int | None = None  # overrides the preset's
    time_budget: float | None = None  # seconds of fitting at most (fine-tuning included)
    sampler: str = "importance"  # fastest measured (docs/SAMPLING.md)
    sampler_options: SamplerOptions = field(default_factory=SamplerOptions)
    batch_fraction: float | None = None  # overrides the share of coordinates per step
    lr: float | None = None  # overrides the preset's peak learning rate (SIREN scale)
    qat_steps: int | None = None  # fine-tuning on the rounded weights; None: the preset's
    warmup: float = DEFAULT_WARMUP  # share of each fit over which the rate ramps up
    l1: float = 0.0  # rate-aware penalty on the weights (kancoin.fit.trainer.FitConfig.l1)
    seed: int = 0
    step: str = "fast"  # training step: "fast" or "autograd" (kancoin.fit.select)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r} (have: {', '.join(PRESETS)})")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r} (have: {', '.join(SAMPLERS)})")
        if self.step not in STEP_KINDS:
            raise UsageError(f"step must be one of {', '.join(STEP_KINDS)}, got {self.step!r}")
        _integer(self, "steps", 1, None)
        _number(self, "time_budget", 0, None, low_open=True)
        _number(self, "batch_fraction", 0, 1, low_open=True)
        _number(self, "lr", 0, 1, low_open=True)
        _integer(self, "qat_steps", 0, None)
        _number(self, "warmup", 0, 1, high_open=True)
        _number(self, "l1", 0, 1)
        _integer(self, "seed", 0, None)


@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "auto"
    threads: int | None = None  # None: the signal kind's default

    def __post_init__(self) -> None:
        _integer(self, "threads", 1, 4096)


GROUPS = {
    "rate": RateOptions,
    "model": ModelOptions,
    "training": TrainingOptions,
    "runtime": RuntimeOptions,
}
# flat option name (Python API keyword, CLI flag) -> its group
OPTION_GROUPS = {f.name: group for group, cls in GROUPS.items() for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class EncodeConfig:
    rate: RateOptions = field(default_factory=RateOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    training: TrainingOptions = field(default_factory=TrainingOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)

    @classmethod
    def of(cls, **options) -> EncodeConfig:
        """A config from flat options, e.g. EncodeConfig.of(bpp=0.3, steps=300)."""
        return cls().with_options(**options)

    def with_options(self, **options) -> EncodeConfig:
        """This config with some flat options changed."""
        by_group: dict[str, dict] = {}
        for name, value in options.items():
            group = OPTION_GROUPS.get(name)
            if group is None:
                raise UsageError(f"unknown option {name!r} (have: {', '.join(OPTION_GROUPS)})")
            by_group.setdefault(group, {})[name] = value
        changed = {
            group: dataclasses.replace(getattr(self, group), **values)
            for group, values in by_group.items()
        }
        return dataclasses.replace(self, **changed)

    def resolved(self) -> EncodeConfig:
        """The config an encode runs with (RateOptions.resolved)."""
        return dataclasses.replace(self, rate=self.rate.resolved())

    def options(self) -> dict:
        """Every flat option and its value."""
        return {name: getattr(getattr(self, group), name) for name, group in OPTION_GROUPS.items()}


def _number(owner, name: str, low, high, *, low_open=False, high_open=False) -> None:
    value = getattr(owner, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UsageError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value):
        raise UsageError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"{left}{low:g}, {'inf' if high is None else f'{high:g}'}{right}"
        raise UsageError(f"{name} must be in {span}, got {value:g}")


def _integer(owner, name: str, low, high) -> None:
    value = getattr(owner, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise UsageError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f"at least {low}"
        raise UsageError(f"{name} must be {span}, got {value}")
