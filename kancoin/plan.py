"""The one planning step: a config and a signal -> the model, its size and the training phases.

Every policy decision of an encode is made here, before any fitting: which family and shape
(sized by the family for the budget, kancoin.models.base.ModelSpec.size_for), how many steps
at which batch fraction, learning rate and sampler, whether and how long the rounded network
is fine-tuned. The encoder (kancoin.encoder) carries the plan out; `kancoin encode --plan`
prints it without fitting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kancoin import bitstream, rate
from kancoin import prior as priors
from kancoin.config import EncodeConfig
from kancoin.errors import InputError, RateError, UsageError
from kancoin.fit.nint import PAPER_BATCH_FRACTION
from kancoin.models import ModelSpec
from kancoin.models.sizing import MIN_WIDTH
from kancoin.presets import Preset, get_preset

# with a quality target the fit stops this far above it: quantization then spends the margin
STOP_MARGIN_DB = 0.5


@dataclass(frozen=True)
class Phase:
    """One stretch of training, the same for every network of the signal."""

    name: str  # "fit" or "fine-tune"
    steps: int | None  # per network; None: bounded by the time budget alone
    lr: float  # peak learning rate
    warmup: float  # share of the phase over which the rate ramps up
    batch_fraction: float  # share of the coordinates per step
    sampler: str
    quantization: str  # "float", or "straight-through" on the rounded weights
    time_share: float | None = None  # share of --time-budget; None: not bounded by it
    share_of_fit: float | None = None  # fine-tuning: steps as this share of the fit's steps
    stop_psnr: float | None = None  # stop as soon as the whole signal reaches it (dB)

    def describe(self) -> str:
        steps = "until the time budget" if self.steps is None else f"{self.steps} steps"
        if self.share_of_fit is not None:
            steps += f" ({self.share_of_fit:.0%} of the fit)"
        stop = "" if self.stop_psnr is None else f", stop at {self.stop_psnr:g} dB"
        return (
            f"{self.name}: {steps}, {self.batch_fraction:.1%} batches by {self.sampler}, "
            f"lr {self.lr:.3g} (warm-up {self.warmup:.0%}), {self.quantization} weights{stop}"
        )


@dataclass(frozen=True)
class EncodePlan:
    signal: object  # the signal's header record (kancoin.signal_info.SignalInfo)
    spec: ModelSpec
    budget_bits: float | None  # the file may not exceed it; None: no rate target
    expected_bits: float | None  # what the rate plan expects the file to take
    quantized: bool  # weights allocated and rounded (always, unless neither rate nor bits)
    phases: tuple[Phase, ...]
    threads: int | None  # torch threads; None: torch's own count
    seed: int
    target_psnr: float | None = None  # a quality target (dB): no more bits than it needs
    flat: bool = False  # constant networks already code the signal well enough: no fit
    flat_psnr: float = 0.0  # what they code
    prior: priors.Prior | None = None  # the cohort prior supplying the first layers
    freeze: int = 0  # how many: neither trained nor coded
    freeze_rule: int | None = None  # what the stable-rank rule picks (also with --freeze)

    @property
    def prior_ref(self) -> priors.PriorRef | None:
        """What the file's header says of the prior (None: a version 1 file)."""
        if self.prior is None or self.freeze == 0:
            return None
        return priors.PriorRef(self.prior.id, self.freeze)

    @property
    def networks(self) -> int:
        return self.signal.networks

    @property
    def fit(self) -> Phase:
        return self.phases[0]

    @property
    def fine_tune(self) -> Phase | None:
        return self.phases[1] if len(self.phases) > 1 else None

    def describe(self) -> str:
        params = self.spec.num_params() * self.networks
        rate_line = "no rate target"
        if self.target_psnr is not None:
            rate_line = f"quality target {self.target_psnr:g} dB, no rate cap"
        if self.budget_bits is not None:
            rate_line = (
                f"budget {self.budget_bits:.0f} bits "
                f"({self.signal.rate(self.budget_bits):.4g} {self.signal.rate_unit}), "
                f"planned about {self.expected_bits:.0f}"
            )
        networks = f" x {self.networks} networks" if self.networks > 1 else ""
        prior_lines = []
        if self.prior_ref is not None:
            coded = rate.coded_params(self.spec, self.prior_ref) * self.networks
            how = "the stable-rank rule" if self.freeze == self.freeze_rule else "--freeze"
            prior_lines = [
                f"prior   {self.prior.describe()}: first {self.freeze} layers frozen "
                f"({how}; the rule picks {self.freeze_rule}), {coded} parameters coded"
            ]
        lines = [
            f"signal  {self.signal.describe()}",
            f"model   {self.spec.describe()}{networks}, {params} parameters",
            *prior_lines,
            f"rate    {rate_line}",
            *(f"phase   {phase.describe()}" for phase in self.phases if not self.flat),
            *([f"fit     none: the mean codes it at {self.flat_psnr:.2f} dB"] if self.flat else []),
            "then    bit allocation, write, decode and measure the written file",
        ]
        return "\n".join(lines)

    def summary(self) -> dict:
        """The plan as JSON-ready data (`kancoin encode --plan --json`)."""
        return {
            "signal": self.signal.describe(),
            "model": self.spec.describe(),
            "networks": self.networks,
            "params": self.spec.num_params() * self.networks,
            "budget_bits": self.budget_bits,
            "expected_bits": None if self.expected_bits is None else round(self.expected_bits),
            "phases": [
                {
                    "name": p.name,
                    "steps": p.steps,
                    "lr": p.lr,
                    "warmup": p.warmup,
                    "batch_fraction": p.batch_fraction,
                    "sampler": p.sampler,
                    "quantization": p.quantization,
                }
                for p in self.phases
            ],
            "threads": self.threads,
            "seed": self.seed,
            "psnr_target": self.target_psnr,
            "flat": self.flat,
            "prior": None if self.prior_ref is None else self.prior_ref.hex,
            "freeze": self.freeze,
            "freeze_rule": self.freeze_rule,
        }


def plan(kind, config: EncodeConfig) -> EncodePlan:
    """Everything an encode of `kind`'s signal will do, decided up front."""
    config = config.resolved()
    preset = get_preset(config.training.preset)
    budget = kind.budget_bits(config)
    target = config.rate.psnr
    # a signal its mean already codes at the target (or exactly, without one: a flat image,
    # silence) needs no fit, and the smallest network holds a constant
    flat_psnr = kind.flat_psnr()
    flat = flat_psnr >= (math.inf if target is None else target) and config.rate.bits is None
    prior, freeze, rule = _prior_for(kind, config)
    if flat:
        prior, freeze = None, 0
    if flat and config.model.layers is None:
        spec = kind.base_spec(config).replace(layers=1, width=MIN_WIDTH)
    elif prior is not None and freeze > 0:
        if budget is None and target is not None:
            spec = _spec_with_prior(
                kind, config, preset, kind.plan_bits_for_psnr(target), prior, freeze, strict=False
            )
        else:
            spec = _spec_with_prior(kind, config, preset, budget, prior, freeze)
    elif target is not None and budget is None:
        spec = _spec_for_target(kind, config, preset, kind.plan_bits_for_psnr(target))
    else:
        spec = choose_spec(kind, config, preset, budget)
    info = kind.info
    if spec.num_params() * info.networks > bitstream.MAX_TOTAL_PARAMS:
        raise InputError(
            f"{info.describe()} needs {spec.num_params() * info.networks} parameters at this "
            f"rate, above the {bitstream.MAX_TOTAL_PARAMS} one file may hold; lower the rate"
        )
    quantized = budget is not None or config.rate.bits is not None or target is not None
    ref = priors.PriorRef(prior.id, freeze) if prior is not None and freeze > 0 else None
    expected = None
    if budget is not None:
        per_param = _bits_per_param(kind, config, spec)
        expected = rate.expected_bits(spec, info, per_param, info.networks, ref)
    runtime = config.runtime
    return EncodePlan(
        signal=info,
        spec=spec,
        budget_bits=budget,
        expected_bits=expected,
        quantized=quantized,
        phases=_phases(kind, config, preset, spec, quantized),
        threads=runtime.threads if runtime.threads is not None else kind.default_threads,
        seed=config.training.seed,
        target_psnr=target,
        flat=flat,
        flat_psnr=flat_psnr,
        prior=prior if ref is not None else None,
        freeze=freeze if ref is not None else 0,
        freeze_rule=rule,
    )


def _prior_for(kind, config: EncodeConfig) -> tuple[priors.Prior | None, int, int | None]:
    """The prior asked for, the freeze depth to use and the one the stable-rank rule picks."""
    name = config.model.prior
    if name is None:
        return None, 0, None
    prior = priors.find(name)
    if prior.spec.in_features != kind.info.coord_dims:
        raise UsageError(
            f"prior {prior.name} is for {prior.spec.in_features}-D coordinates, this signal "
            f"has {kind.info.coord_dims}"
        )
    rule = prior.rule_freeze()
    freeze = rule if config.model.freeze is None else config.model.freeze
    if freeze > prior.max_freeze():
        raise UsageError(f"freeze {freeze}: prior {prior.name} has {prior.max_freeze()} layers")
    return prior, freeze, rule


def _spec_with_prior(
    kind, config, preset: Preset, budget: float | None, prior, freeze: int, strict: bool = True
) -> ModelSpec:
    """The prior's network for this signal: its width and frequencies, its first `freeze`
    layers, and as many coded layers after them as the whole budget pays for (the header,
    the coded layers and the output layer; the frozen ones cost nothing)."""
    base = prior.spec.replace(out_features=kind.info.channels)
    model = config.model
    if model.layers is not None:
        if model.width != base.width or model.layers < freeze:
            raise UsageError(
                f"with prior {prior.name}: width must be {base.width} and layers at least "
                f"{freeze}, got {model.layers}x{model.width}"
            )
        return base.replace(layers=model.layers)
    if budget is None:
        return base.replace(layers=max(base.layers, freeze))
    ref = priors.PriorRef(prior.id, freeze)
    per_param = _bits_per_param(kind, config, base)
    networks = kind.info.networks
    top = min(63, freeze + kind.max_layers(preset))
    for layers in range(top, freeze - 1, -1):
        spec = base.replace(layers=layers)
        if rate.expected_bits(spec, kind.info, per_param, networks, ref) <= budget:
            return spec
    if not strict:
        return base.replace(layers=freeze)
    smallest = base.replace(layers=freeze)
    needed = rate.expected_bits(smallest, kind.info, per_param, networks, ref)
    raise RateError(
        f"a budget of {budget:.0f} bits is too small for prior {prior.name} frozen at "
        f"{freeze} (its output layer alone needs about {needed:.0f}): "
        + what_would_work(kind, needed)
    )


def choose_spec(kind, config: EncodeConfig, preset: Preset, budget: float | None) -> ModelSpec:
    """The family's spec for this signal: the shape asked for, or sized for the budget."""
    base = kind.base_spec(config)
    model = config.model
    if model.layers is not None:
        return base.replace(layers=model.layers, width=model.width)
    if budget is None:
        return base
    bits_per_param = _bits_per_param(kind, config, base)
    try:
        return rate.plan(
            base,
            kind.info,
            budget,
            max_layers=kind.max_layers(preset),
            bits_per_param=bits_per_param,
            networks=kind.info.networks,
        )
    except RateError as exc:
        smallest = base.replace(layers=1, width=MIN_WIDTH)
        needed = rate.expected_bits(smallest, kind.info, bits_per_param, kind.info.networks)
        raise RateError(f"{exc}: {what_would_work(kind, needed)}") from None


def _spec_for_target(kind, config, preset: Preset, plan_bits: float) -> ModelSpec:
    """A quality target without a cap: the planned network, or the smallest one when the
    plan's bits buy none (a tiny image); no rate is asked for, so none can fail."""
    try:
        return choose_spec(kind, config, preset, plan_bits)
    except RateError:
        return kind.base_spec(config).replace(layers=1, width=MIN_WIDTH)


def what_would_work(kind, bits: float) -> str:
    """The rate that would do, or, above the option's range, a quality target instead."""
    option = kind.rate_for_bits(bits)
    value = float(option.split()[-1])
    limit = 64 if kind.rate_option == "bpp" else 10_000
    if value <= limit:
        return f"{option} or more would do"
    return (
        f"that is above the largest {kind.rate_option} ({limit:g}) for this "
        f"{kind.info.describe()}; ask for quality instead, e.g. --psnr 40 (no rate cap)"
    )


def _bits_per_param(kind, config: EncodeConfig, spec: ModelSpec) -> float:
    bits = config.rate.bits
    return float(bits) if bits else kind.bits_per_param(spec)


def _phases(kind, config, preset: Preset, spec: ModelSpec, quantized: bool) -> tuple[Phase, ...]:
    training = config.training
    fraction = batch_fraction(kind, config, preset, spec)
    steps = training.steps
    if steps is None and training.time_budget is None:
        steps = preset.steps_at(fraction)
    # fine-tuning takes the preset's share of the fit's steps, and that share of a time
    # budget; explicit qat_steps come on top of the budget, as asked
    share = 0.0
    if quantized and training.qat_steps is None:
        share = kind.qat_share(spec, preset)
    fit_share = 1 / (1 + share)
    bounded = training.time_budget is not None
    lr = (training.lr or preset.fit.lr) * spec.lr_scale
    fit = Phase(
        name=preset.fit.name,
        steps=steps,
        lr=lr,
        warmup=training.warmup,
        batch_fraction=fraction,
        sampler=training.sampler,
        quantization=preset.fit.quantization,
        time_share=fit_share if bounded else None,
        stop_psnr=None if config.rate.psnr is None else config.rate.psnr + STOP_MARGIN_DB,
    )
    tune_spec = next((p for p in preset.phases[1:] if p.quantization != "float"), None)
    if not quantized or tune_spec is None:
        return (fit,)
    if training.qat_steps is not None:
        if training.qat_steps == 0:
            return (fit,)
        tune_steps, share_of_fit = training.qat_steps, None
    elif share > 0:
        share_of_fit = share
        tune_steps = None if steps is None else round(share * steps)
    else:
        return (fit,)
    tune = Phase(
        name=tune_spec.name,
        steps=tune_steps,
        lr=lr * tune_spec.lr_ratio,
        warmup=training.warmup if tune_spec.warmup is None else tune_spec.warmup,
        batch_fraction=fraction,
        sampler=training.sampler,
        quantization=tune_spec.quantization,
        share_of_fit=share_of_fit,  # with a time budget: of the steps the fit managed
        stop_psnr=fit.stop_psnr,
    )
    return (fit, tune)


def batch_fraction(kind, config: EncodeConfig, preset: Preset, spec: ModelSpec) -> float:
    training = config.training
    if training.batch_fraction is not None:
        return training.batch_fraction
    if training.sampler == "nint" and training.sampler_options.nint_mode == "paper":
        return PAPER_BATCH_FRACTION  # NINT as published, not at kancoin's batch size
    return kind.batch_fraction(spec, preset)
