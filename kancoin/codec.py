"""The codec: signal -> fitted networks -> quantized, entropy-coded .inr bytes, and back.

`encode` runs the closed loop: after writing the bytes it decodes them with the decoder's
own code path and reports distortion of the written output (8-bit image, 16-bit audio) and
rate of the real bytes. The loop is shared by every signal kind; kancoin/adapters.py holds
what differs between images and audio.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from kancoin import adapters, allocation, bitstream, entropy, quant, rate
from kancoin.adapters import DefaultRate, Part
from kancoin.bitstream import Header, TensorCoding
from kancoin.device import resolve_device, thread_limit
from kancoin.errors import FormatError, InputError, LimitError, OutputError, RateError, UsageError
from kancoin.fileio import check_output, write_atomic, write_bytes_atomic
from kancoin.fit import SAMPLERS, FitConfig, FitResult, SamplerOptions, fit
from kancoin.fit.nint import PAPER_BATCH_FRACTION
from kancoin.fit.qat import StraightThrough
from kancoin.fit.select import STEP_KINDS
from kancoin.fit.trainer import DEFAULT_WARMUP, ProgressFn
from kancoin.models import ModelSpec, spec_class_by_name
from kancoin.presets import Preset, get_preset
from kancoin.quant import dequantize
from kancoin.render import render
from kancoin.signals import psnr_from_mse

DEFAULT_BPP = adapters.DEFAULT_IMAGE_BPP
DEFAULT_KBPS = adapters.DEFAULT_AUDIO_KBPS
AUTO_LOSS_DB = 0.1  # --bits auto without a rate: quantization may cost at most this much
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold
DEFAULT_LOSSY_QUALITY = adapters.DEFAULT_LOSSY_QUALITY  # decoding to .jpg/.webp
RECORDED_PSNR_MAX = 655.35  # the header's PSNR field saturates here: an exact decode
DECODED_TAG = ".decoded"  # decode's default output: NAME.decoded.png, never the original
QAT_LR_RATIO = 0.1  # fine-tuning's peak learning rate, relative to the fit's
# with --psnr the fit stops this far above the target: quantization then spends the margin
STOP_MARGIN_DB = 0.5


@dataclass(frozen=True)
class EncodeConfig:
    bpp: float | None = DEFAULT_BPP  # images
    kbps: float | None = DEFAULT_KBPS  # audio
    bits: int | None = None  # None: automatic per-tensor allocation
    model: str = "siren"
    layers: int | None = None
    width: int | None = None
    preset: str = "default"
    steps: int | None = None  # overrides the preset's step count
    time_budget: float | None = None
    sampler: str = "nint"  # fastest measured (docs/SAMPLING.md)
    sampler_options: SamplerOptions = field(default_factory=SamplerOptions)
    batch_fraction: float | None = None  # overrides the preset's share of coordinates per step
    lr: float | None = None  # overrides the preset's peak learning rate (SIREN scale)
    qat_steps: int | None = None  # quantization-aware fine-tuning; None: the preset's share
    warmup: float = DEFAULT_WARMUP  # share of each fit over which the learning rate ramps up
    l1: float = 0.0  # rate-aware penalty on the weights (kancoin.fit.trainer.FitConfig.l1)
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    keep_alpha: bool = False
    step: str = "fast"  # training step: "fast" or "autograd" (kancoin.fit.select)
    segment_seconds: float | None = None  # audio; None: from the rate (adapters)
    w0_first: float | None = None  # None: the signal kind's default (SIREN only)
    # quality target in dB (images: PSNR; audio: PSNR of the waveform in [0, 1]): the fit
    # stops once it is reached and the file spends no more bits than it needs; a rate given
    # with it is a cap, the default rate is then none
    psnr: float | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        if self.bpp is not None and not 0 < self.bpp <= 64:
            raise UsageError(f"--bpp must be in (0, 64], got {self.bpp}")
        if self.kbps is not None and not 0 < self.kbps <= 10_000:
            raise UsageError(f"--kbps must be in (0, 10000], got {self.kbps}")
        if self.segment_seconds is not None and not 0 < self.segment_seconds <= 60:
            raise UsageError(f"--segment must be in (0, 60] seconds, got {self.segment_seconds}")
        if self.w0_first is not None and not 1e-3 <= self.w0_first <= 1e6:
            raise UsageError(f"w0_first must be in [0.001, 1e6], got {self.w0_first}")
        if self.bits is not None and not 2 <= self.bits <= 16:
            raise UsageError(f"--bits must be auto or 2..16, got {self.bits}")
        if (self.layers is None) != (self.width is None):
            raise UsageError("--layers and --width go together")
        if self.layers is not None and not (1 <= self.layers <= 63 and 1 <= self.width <= 4095):
            raise UsageError("--layers must be 1..63 and --width 1..4095")
        if self.qat_steps is not None and self.qat_steps < 0:
            raise UsageError("--qat-steps must be 0 or more")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"--warmup must be in [0, 1), got {self.warmup}")
        if not 0 <= self.l1 <= 1:
            raise UsageError(f"--l1 must be in [0, 1], got {self.l1}")
        if self.steps is not None and self.steps < 1:
            raise UsageError("--steps must be at least 1")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UsageError("--time-budget must be positive")
        if self.step not in STEP_KINDS:
            raise UsageError(f"--step must be one of {', '.join(STEP_KINDS)}, got {self.step!r}")
        try:
            get_preset(self.preset)
            spec_class_by_name(self.model)
        except (ValueError, KeyError) as exc:
            raise UsageError(f"unknown model or preset: {exc}") from None
        if self.lr is not None and not 0 < self.lr <= 1:
            raise UsageError(f"--lr must be in (0, 1], got {self.lr}")
        if self.batch_fraction is not None and not 0 < self.batch_fraction <= 1:
            raise UsageError(f"batch fraction must be in (0, 1], got {self.batch_fraction}")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r} (have: {', '.join(SAMPLERS)})")
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise UsageError(f"--threads must be 1 or more, got {self.threads}")
        if self.psnr is not None and not 1 <= self.psnr <= 200:
            raise UsageError(f"--psnr must be in [1, 200] dB, got {self.psnr}")


_NUMBER_FIELDS = (
    "bpp", "kbps", "time_budget", "batch_fraction", "lr", "warmup", "l1", "segment_seconds",
    "w0_first", "psnr",
)  # fmt: skip
_INT_FIELDS = ("bits", "layers", "width", "steps", "qat_steps", "seed", "threads")


def _check_types(config: EncodeConfig) -> None:
    """A library caller's bpp="0.3" gets a UsageError naming the field, not a TypeError
    from deep inside the planner."""
    for name in _NUMBER_FIELDS + _INT_FIELDS:
        value = getattr(config, name)
        if value is None:
            continue
        integral = name in _INT_FIELDS
        kinds = (int, np.integer) if integral else (int, float, np.integer, np.floating)
        if isinstance(value, bool) or not isinstance(value, kinds):
            kind = "an integer" if integral else "a number"
            raise UsageError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
        if not integral and not np.isfinite(value):
            raise UsageError(f"{name} must be finite, got {value!r}")


@dataclass
class EncodeResult:
    data: bytes
    header: Header
    psnr: float  # of the decoded output as written (8-bit image, 16-bit audio), real bytes
    psnr_float: float  # of the float networks before quantization
    psnr_quantized: float  # of the float render of the quantized networks
    steps: int  # per network (the mean, when segments stop at a time budget)
    fit_seconds: float
    seconds: float
    device: str
    output: Path | None = None
    input: Path | None = None
    history: list = field(default_factory=list)  # the fit's (step, s, psnr), one network only
    fit_cpu_seconds: float = 0.0
    snr: float | None = None  # audio: signal-to-noise ratio of the decoded waveform, dB
    qat_steps: int = 0  # fine-tuning steps on the rounded weights, per network
    rollbacks: int = 0  # collapsed fits the divergence guard rolled back (kancoin.fit.trainer)
    psnr_target: float | None = None  # --psnr, when asked for

    @property
    def target_met(self) -> bool | None:
        return None if self.psnr_target is None else self.psnr >= self.psnr_target

    def __repr__(self) -> str:
        unit = self.header.signal.rate_unit
        return (
            f"EncodeResult(output={str(self.output) if self.output else None!r}, "
            f"bytes={self.num_bytes}, {unit}={self.rate:.4f}, psnr={self.psnr:.2f}, "
            f"model={self.header.spec.describe()!r}, steps={self.steps})"
        )

    @property
    def num_bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / self.header.signal.samples

    @property
    def rate(self) -> float:
        """In the signal's unit: bpp for images, kbps for audio."""
        return self.header.signal.rate(8 * len(self.data))

    def bit_depths(self) -> list[int]:
        return [c.entropy.max_abs.bit_length() + 1 for c in self.header.tensors]

    def summary(self) -> dict:
        params = self.header.spec.num_params() * self.header.networks
        summary = {
            "input": str(self.input) if self.input else None,
            "output": str(self.output) if self.output else None,
            "bytes": self.num_bytes,
            self.header.signal.rate_unit: round(self.rate, 6),
            "psnr": _json_db(self.psnr),
            "psnr_float": _json_db(self.psnr_float),
            "psnr_quantized": _json_db(self.psnr_quantized),
            "model": self.header.spec.describe(),
            "params": params,
            "bits": self.bit_depths(),
            "mean_bits_per_param": round(8 * self.header.payload_words * 4 / max(1, params), 3),
            "steps": self.steps,
            "qat_steps": self.qat_steps,
            "rollbacks": self.rollbacks,
            "seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "fit_cpu_seconds": round(self.fit_cpu_seconds, 3),
            "device": self.device,
            "signal": self.header.signal.describe(),
        }
        if self.psnr_target is not None:
            summary["psnr_target"] = self.psnr_target
            summary["target_met"] = self.target_met
        if self.snr is not None:
            summary["snr"] = _json_db(self.snr)
            summary["networks"] = self.header.networks
        return summary


def _json_db(value: float | None) -> float | None:
    """A dB figure for JSON: infinite (an exact decode, or the SNR of silence) and NaN
    become null, since JSON has no Infinity (docs/CLI.md)."""
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)


def encode(
    source,
    output: str | Path | None = None,
    *,
    config: EncodeConfig | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
    sample_rate: int | None = None,
    **options,
) -> EncodeResult:
    """Compress an image or audio clip (array or path) to .inr bytes; write them to `output`.

    Paths ending in .wav or .flac are audio; an array is audio when `sample_rate` is given
    (frames or frames x channels, int16 or float in [-1, 1]), an image otherwise.
    Keyword options are EncodeConfig fields (e.g. bpp=0.3 or kbps=32, steps=300).
    """
    started = time.perf_counter()
    config = replace(config or EncodeConfig(), **options)
    if config.psnr is not None:  # a quality target: only an explicit rate caps the file
        config = replace(
            config,
            bpp=None if isinstance(config.bpp, DefaultRate) else config.bpp,
            kbps=None if isinstance(config.kbps, DefaultRate) else config.kbps,
        )
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
    kind = adapters.for_source(source, config, sample_rate=sample_rate)
    info = kind.info
    preset = get_preset(config.preset)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)

    budget = kind.budget_bits(config)
    plan_bits = budget
    if config.psnr is not None:
        wanted = kind.plan_bits_for_psnr(config.psnr)
        plan_bits = wanted if budget is None else budget
    # a signal its mean already codes at the target (or exactly, the target without one:
    # a flat image, silence) needs no fit, and the smallest network holds a constant
    target = config.psnr if config.psnr is not None else math.inf
    flat_psnr = kind.flat_psnr()
    flat = flat_psnr >= target and config.bits is None
    if flat and config.layers is None:
        spec = kind.base_spec(config).replace(layers=1, width=rate.MIN_WIDTH)
    elif config.psnr is not None and budget is None:
        spec = _spec_for_target(config, kind, kind.max_layers(preset), plan_bits)
    else:
        spec = _choose_spec(config, kind, kind.max_layers(preset), plan_bits)
    if spec.num_params() * info.networks > bitstream.MAX_TOTAL_PARAMS:
        raise InputError(
            f"{info.describe()} needs {spec.num_params() * info.networks} parameters at this "
            f"rate, above the {bitstream.MAX_TOTAL_PARAMS} one file may hold; lower the rate"
        )
    models = [spec.build().to(device) for _ in range(info.networks)]
    threads = config.threads if config.threads is not None else kind.default_threads
    with thread_limit(threads):
        quantized = budget is not None or config.bits is not None or config.psnr is not None
        # fine-tuning takes qat_share of the fit's steps, and that share of a time budget
        # and of the progress bar; explicit --qat-steps come on top, as asked
        preset_share = quantized and config.qat_steps is None
        qat_share = kind.qat_share(spec, preset) if preset_share else 0.0
        fit_share = 1 / (1 + qat_share)
        _phase(progress, "fit")
        fit_progress = _part_progress(progress, 0.0, fit_share)
        if flat and _make_constant(models, kind, device):
            fits = [FitResult(psnr=flat_psnr, steps=0, seconds=0.0) for _ in models]
        else:
            fits = _fit_parts(models, kind, config, preset, device, fit_progress, fit_share)
        if not quantized:
            qat_steps = 0
        elif config.qat_steps is not None:
            qat_steps = config.qat_steps
        else:
            qat_steps = round(qat_share * sum(f.steps for f in fits) / len(fits))
        tunings = []
        if qat_steps:
            _phase(progress, "bit allocation")
            chosen, _ = _allocate(models, spec, kind, config, budget, device)
            _phase(progress, "fine-tuning")
            tuning_progress = _part_progress(progress, fit_share, 1 - fit_share)
            tunings = _finetune_quantized(
                models, chosen, kind, config, preset, device, qat_steps, tuning_progress
            )
        _phase(progress, "bit allocation")
        data, payload, psnr_quantized, table = _quantize_and_write(
            models, spec, kind, config, budget, device
        )
        # closed loop: the decoder's own path on the real bytes, measured on the written output
        _phase(progress, "verification")
        header, _ = bitstream.read(data)
        metrics = kind.measure(decode(data, device=str(device)))
        # no more bits than needed: once the target (or, without one, an exact decode) is
        # met, the smallest allocation that still meets it on the decoded output wins
        if table is not None and (config.psnr is not None or math.isinf(metrics["psnr"])):
            smaller = _smallest_meeting(table, spec, kind, budget, target, device, metrics, data)
            if smaller is not None:
                data, payload, metrics = smaller
                header, _ = bitstream.read(data)
    data = bitstream.write(replace(header, psnr=metrics["psnr"]), payload)  # field reserved
    if output is not None:
        write_bytes_atomic(output, data)
    return EncodeResult(
        data=data,
        header=bitstream.read(data)[0],
        psnr=metrics["psnr"],
        psnr_float=_combined_psnr([f.psnr for f in fits], kind.weights()),
        psnr_quantized=psnr_quantized,
        steps=round(sum(f.steps for f in fits) / len(fits)),
        fit_seconds=sum(f.seconds for f in fits),
        seconds=time.perf_counter() - started,
        device=str(device),
        output=Path(output) if output is not None else None,
        input=Path(source) if isinstance(source, str | Path) else None,
        history=fits[0].history if len(fits) == 1 else [],
        fit_cpu_seconds=sum(f.cpu_seconds for f in fits),
        snr=metrics.get("snr"),
        qat_steps=qat_steps,
        rollbacks=sum(f.rollbacks for f in fits + tunings),
        psnr_target=config.psnr,
    )


def _make_constant(models, kind, device) -> bool:
    """Every coded tensor zero but the output bias, which holds the part's mean: a network
    that renders a constant. False (models untouched) for a family where that does not
    hold."""
    for index, model in enumerate(models):
        part = kind.part(index, device)
        mean = part.targets.mean(dim=0)
        if not hasattr(model, "init_output"):
            return False
        with torch.no_grad():
            saved = [t.detach().clone() for t in model.coded_tensors()]
            for tensor in model.coded_tensors():
                tensor.zero_()
            model.init_output(mean)
            probe = render(model, part.coords[:64])
            if not torch.allclose(probe, mean.expand_as(probe), atol=1e-6):
                for tensor, value in zip(model.coded_tensors(), saved, strict=True):
                    tensor.copy_(value)
                return False
    return True


def _phase(progress, name: str) -> None:
    """Tell a progress sink that understands phases (kancoin.progress) which one runs."""
    set_phase = getattr(progress, "phase", None)
    if set_phase is not None:
        set_phase(name)


def _meets(metrics: dict, target: float) -> bool:
    return metrics["psnr"] >= target


def _smallest_meeting(table, spec, kind, budget, target, device, metrics, current: bytes):
    """(data, payload, metrics) of the cheapest allocation along the Lagrangian path whose
    decoded output meets `target` dB within the budget; None when the written file
    (`current`, measured as `metrics`) is the cheapest known to meet it, or nothing does.

    Measured on the real decode, not on the allocation's estimates: an estimate that says
    "lossless" is not a decode that is. Lambda walks from coarse to fine a decade at a time
    (allocations the estimates put far below the target are skipped unrendered), then
    bisects between the last miss and the first hit: about ten renders at most.
    """
    if budget is not None and not _meets(metrics, target):
        return None  # the cap binds: the file at the cap is the best there is
    info = kind.info
    target_mse = 10 ** (-target / 10) if math.isfinite(target) else 0.0

    def probe(lam: float):
        chosen = allocation.pick(table, lam)
        if target_mse and chosen.added_mse > 4 * target_mse:
            return "miss", None
        data, payload = _write(chosen, spec, info)
        if budget is not None and 8 * len(data) > budget:
            return "over", None
        found = kind.measure(decode(data, device=str(device)))
        return ("ok" if _meets(found, target) else "miss"), (data, payload, found)

    best, hit, miss = None, None, None
    for lam in [10.0**k for k in range(2, -15, -1)] + [0.0]:
        status, found = probe(lam)
        if status == "over":
            break
        if status == "ok":
            best, hit = found, lam
            break
        miss = lam
    if best is None:
        return None
    if miss is not None and hit > 0:
        for _ in range(3):  # bisect on log(lambda) between the last miss and the first hit
            mid = (hit * miss) ** 0.5
            status, found = probe(mid)
            if status == "ok":
                best, hit = found, mid
            else:
                miss = mid
    if _meets(metrics, target) and len(best[0]) >= len(current):
        return None
    return best


def _choose_spec(config: EncodeConfig, kind, max_layers: int, budget: float | None) -> ModelSpec:
    base = kind.base_spec(config)
    if config.layers is not None:
        return base.replace(layers=config.layers, width=config.width)
    if budget is None:
        return base
    bits_per_param = float(config.bits) if config.bits else kind.bits_per_param(base)
    try:
        return rate.plan(
            base,
            kind.info,
            budget,
            max_layers=max_layers,
            bits_per_param=bits_per_param,
            networks=kind.info.networks,
        )
    except RateError as exc:
        smallest = base.replace(layers=1, width=rate.MIN_WIDTH)
        needed = rate.expected_bits(smallest, kind.info, bits_per_param, kind.info.networks)
        raise RateError(f"{exc}: {_what_would_work(kind, needed)}") from None


def _spec_for_target(config: EncodeConfig, kind, max_layers: int, plan_bits: float):
    """A quality target without a cap: the planned network, or the smallest one when the
    plan's bits buy none (a tiny image); no rate is asked for, so none can fail."""
    try:
        return _choose_spec(config, kind, max_layers, plan_bits)
    except RateError:
        return kind.base_spec(config).replace(layers=1, width=rate.MIN_WIDTH)


def _what_would_work(kind, bits: float) -> str:
    """The rate that would do, or, above the option's range, a quality target instead."""
    option = kind.rate_for_bits(bits)
    value = float(option.split()[-1])
    limit = 64 if kind.rate_option == "--bpp" else 10_000
    if value <= limit:
        return f"{option} or more would do"
    return (
        f"that is above the largest {kind.rate_option} ({limit:g}) for this "
        f"{kind.info.describe()}; ask for quality instead, e.g. --psnr 40 (no rate cap)"
    )


def _fit_parts(models, kind, config, preset, device, progress, time_share) -> list[FitResult]:
    """Fit each part's network in turn; `time_share` of a time budget is shared out by
    part size."""
    fits, done_before = [], 0.0
    for index, model in enumerate(models):
        part = kind.part(index, device)
        fit_config = _fit_config(config, kind, model.spec, preset, index)
        steps = config.steps
        if steps is None and config.time_budget is None:
            steps = preset.steps_at(fit_config.batch_fraction)
        fit_config = replace(
            fit_config,
            steps=steps,
            time_budget=None
            if config.time_budget is None
            else config.time_budget * time_share * part.weight,
        )
        report = _part_progress(progress, done_before, part.weight)
        fits.append(fit(model, part.coords, part.targets, fit_config, progress=report))
        done_before += part.weight
    return fits


def _fit_config(config: EncodeConfig, kind, spec: ModelSpec, preset: Preset, index: int):
    """The fit's settings for network `index`, before its bounds are set."""
    return FitConfig(
        lr=(config.lr or preset.lr) * spec.lr_scale,
        sampler=config.sampler,
        sampler_options=config.sampler_options,
        batch_fraction=_batch_fraction(config, kind, spec, preset),
        warmup=config.warmup,
        l1=config.l1,
        seed=config.seed + index,
        step=config.step,
        stop_psnr=None if config.psnr is None else config.psnr + STOP_MARGIN_DB,
    )


def _batch_fraction(config: EncodeConfig, kind, spec: ModelSpec, preset: Preset) -> float:
    if config.batch_fraction is not None:
        return config.batch_fraction
    if config.sampler == "nint" and config.sampler_options.nint_mode == "paper":
        return PAPER_BATCH_FRACTION  # NINT as published, not at kancoin's batch size
    return kind.batch_fraction(spec, preset)


def _finetune_quantized(
    models, chosen, kind, config, preset, device, steps, progress
) -> list[FitResult]:
    """Straight-through fine-tuning at the allocated steps (kancoin.fit.qat); the
    allocation then runs again on the result, so a file never depends on the guess."""
    shares = allocation.split(chosen, len(models))
    done_before, results = 0.0, []
    for index, (model, share) in enumerate(zip(models, shares, strict=True)):
        part = kind.part(index, device)
        base = _fit_config(config, kind, model.spec, preset, index)
        fit_config = replace(
            base,
            steps=steps,
            lr=base.lr * QAT_LR_RATIO,
            seed=base.seed + 7919,  # not the fit's draws again
            evals=4,
        )
        rounding = StraightThrough(model, [quant.step_size(c.step_index) for c in share.choices])
        report = _part_progress(progress, done_before, part.weight)
        results.append(
            fit(
                model,
                part.coords,
                part.targets,
                fit_config,
                straight_through=rounding,
                progress=report,
            )
        )
        done_before += part.weight
    return results


def _part_progress(progress: ProgressFn | None, before: float, weight: float) -> ProgressFn | None:
    """Maps a phase's or a part's own 0..1 progress onto [before, before + weight]."""
    if progress is None:
        return None

    def report(step: int, done: float, psnr: float, elapsed: float) -> None:
        progress(step, before + weight * done, psnr, elapsed)

    return report


def _combined_psnr(psnrs: list[float], weights: list[float]) -> float:
    """PSNR of the whole signal from its parts' PSNRs (MSEs weighted by part size)."""
    return psnr_from_mse(sum(w * 10 ** (-p / 10) for w, p in zip(weights, psnrs, strict=True)))


def _quantize_and_write(models, spec, kind, config, budget, device):
    """Choose steps per tensor, write the file, and coarsen until it fits the budget.

    Returns the bytes, payload, PSNR of the quantized float render, and the candidate table
    (None for --bits N, where the steps are fixed)."""
    chosen, table = _allocate(models, spec, kind, config, budget, device)
    info = kind.info
    while True:
        data, payload = _write(chosen, spec, info)
        if budget is None or 8 * len(data) <= budget:
            break
        # coarsen by the estimated overshoot before writing again: one write per notch
        # would cost quadratic time in the number of networks
        chosen = allocation.coarser_by(table, chosen, 8 * len(data) - budget)
        if chosen is None:
            raise RateError(f"cannot fit {spec.describe()} in {budget:.0f} bits")
    mse = 0.0
    for model, share in zip(models, allocation.split(chosen, len(models)), strict=True):
        allocation.load_quantized(model, share)
    for index, model in enumerate(models):
        part = kind.part(index, device)
        prediction = render(model, part.coords).clamp_(0, 1)
        mse += part.weight * float((prediction - part.targets).pow(2).mean())
    return data, payload, psnr_from_mse(mse), None if config.bits is not None else table


def _allocate(models, spec, kind, config, budget, device):
    """Each tensor's step, and the candidate table it was chosen from.

    One Lagrangian spans every network's tensors: each part's distortions are weighted by
    its share of the signal, so bits go wherever they lower the whole signal's MSE most.
    """
    generator = torch.Generator().manual_seed(config.seed)
    max_bits = config.bits or allocation.MAX_BITS
    base_mse, table = 0.0, []
    for index, model in enumerate(models):
        part = _allocation_subset(kind.part(index, device), kind.allocation_samples, generator)
        mse, part_table = allocation.candidate_table(
            model, part.coords, part.targets, max_bits=max_bits
        )
        base_mse += part.weight * mse
        table += allocation.weighted(part_table, part.weight)
    info = kind.info
    fixed = rate.header_bits(spec, info, info.networks) + rate.PAYLOAD_SLACK_BITS
    if budget is not None:
        chosen = allocation.for_rate(table, budget - fixed)
        if chosen is not None:
            chosen = allocation.fill(table, chosen, budget - fixed)
        if chosen is None:
            coarsest = allocation.Allocation(tuple(opts[-1] for opts in table))
            raise RateError(
                f"{spec.describe()} cannot be coded in {budget:.0f} bits even at "
                f"{allocation.MIN_BITS} bits per weight; it needs about "
                f"{fixed + coarsest.payload_bits:.0f} bits: "
                + _what_would_work(kind, fixed + coarsest.payload_bits)
            )
    elif config.bits is not None:
        chosen = allocation.pick(table, 0.0)  # finest allowed = the requested depth
    else:
        chosen = allocation.for_distortion(table, base_mse, AUTO_LOSS_DB)
    return chosen, table


def _allocation_subset(part: Part, samples: int, generator: torch.Generator) -> Part:
    """A fixed random subset of the part's coordinates to measure distortions on."""
    count = min(samples, part.coords.shape[0])
    subset = torch.randperm(part.coords.shape[0], generator=generator)[:count]
    subset = subset.to(part.coords.device)
    return Part(part.coords[subset], part.targets[subset], part.weight)


def _write(chosen: allocation.Allocation, spec: ModelSpec, info):
    """File bytes and payload; the PSNR field is reserved now and filled after decoding."""
    codings = tuple(TensorCoding(c.step_index, c.entropy) for c in chosen.choices)
    payload = entropy.encode([(c.ints, c.entropy) for c in chosen.choices])
    header = Header(signal=info, spec=spec, networks=info.networks, tensors=codings, psnr=0.0)
    return bitstream.write(header, payload), payload


def load_models(header: Header, payload: bytes, device: torch.device) -> list[torch.nn.Module]:
    """Rebuild every network of a parsed file from its header and payload."""
    counts = header.tensor_counts()
    ints = iter(
        entropy.decode(payload, list(zip(counts, (t.entropy for t in header.tensors), strict=True)))
    )
    codings = iter(header.tensors)
    models = []
    for _ in range(header.networks):
        model = header.spec.build()
        with torch.no_grad():
            for tensor in model.coded_tensors():
                values, coding = next(ints), next(codings)
                tensor.copy_(
                    torch.from_numpy(dequantize(values, coding.step_index)).reshape(tensor.shape)
                )
        models.append(model.to(device).eval())
    return models


def read_file(source) -> tuple[Header, bytes]:
    """Parse .inr bytes or a path to one; errors about a file name it."""
    if not isinstance(source, str | Path):
        return bitstream.read(bytes(source))
    path = Path(source)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a .inr file")
    if not path.is_file():
        raise InputError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    size = path.stat().st_size
    if size > 1 << 30:
        raise LimitError(f"{path}: {size} bytes is far larger than any .inr we write")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return bitstream.read(data)
    except FormatError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def default_suffix(header: Header) -> str:
    """What `kancoin decode` writes when no output is named: .png or .wav."""
    return adapters.for_header(header).default_suffix


def default_decode_path(source: str | Path, header: Header) -> Path:
    """NAME.decoded.png (or .wav) beside NAME.inr: a name `kancoin encode` never reads
    from by default, so following the README cannot overwrite the original."""
    source = Path(source)
    return source.with_name(source.stem + DECODED_TAG + default_suffix(header))


def _refuse_the_original(source, output: Path, header: Header) -> None:
    """--force still never overwrites the file a .inr was (by its name) made from: NAME.*
    beside NAME.inr holding a signal of the header's size. Whoever means it deletes it."""
    if not isinstance(source, str | Path) or not output.exists():
        return
    source = Path(source)
    if output.parent.resolve() != source.parent.resolve() or output.stem != source.stem:
        return
    if adapters.for_header(header).matches_file(output):
        raise OutputError(
            f"{output}: looks like the original {source.name} was encoded from (same name "
            "and size beside it); kancoin never overwrites it, even with --force: choose "
            "another name"
        )


def decode(
    source,
    output: str | Path | None = None,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    rate: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    device: str = "auto",
    force: bool = False,
    quality: int | None = None,
) -> np.ndarray:
    """Render a .inr (bytes or path); save it if output is given.

    Images: float32 HxWxC in [0, 1], at `scale` or `size`. Audio: float32 frames x channels
    in [-1, 1] over the clip's duration, at `scale` times its sample rate or at `rate` Hz;
    `max_pixels` caps the output frames.
    """
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
    header, payload = read_file(source)
    kind = adapters.for_header(header)
    if output is not None:
        kind.check_format(output, quality=quality)
        _refuse_the_original(source, output, header)
    target = kind.output_size(scale=scale, size=size, rate=rate, max_samples=max_pixels)
    torch_device = resolve_device(device)
    signal = kind.render(load_models(header, payload, torch_device), target, torch_device)
    if output is not None:
        write_atomic(output, lambda path: kind.save(path, signal, target, quality=quality))
    return signal


def describe_decoded(
    header: Header, signal: np.ndarray, *, scale=None, rate=None, output=None, quality=None
) -> str:
    """One line on what decode produced: WxH for images (and a lossy format's quality),
    frames and rate for audio."""
    kind = adapters.for_header(header)
    line = kind.describe_output(signal, scale=scale, rate=rate)
    if output is not None and adapters.is_lossy_image(output):
        line += f", quality {quality or DEFAULT_LOSSY_QUALITY} (--quality)"
    return line
