"""The codec: signal -> fitted networks -> quantized, entropy-coded .inr bytes, and back.

`encode` runs the closed loop: after writing the bytes it decodes them with the decoder's
own code path and reports distortion of the written output (8-bit image, 16-bit audio) and
rate of the real bytes. The loop is shared by every signal kind; kancoin/adapters.py holds
what differs between images and audio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from kancoin import adapters, allocation, bitstream, entropy, quant, rate
from kancoin.adapters import DefaultRate, Part
from kancoin.bitstream import Header, TensorCoding
from kancoin.device import resolve_device, thread_limit
from kancoin.errors import InputError, LimitError, RateError, UsageError
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

DEFAULT_BPP = DefaultRate(0.3)
DEFAULT_KBPS = DefaultRate(32.0)
AUTO_LOSS_DB = 0.1  # --bits auto without a rate: quantization may cost at most this much
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold
QAT_LR_RATIO = 0.1  # fine-tuning's peak learning rate, relative to the fit's


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

    def __post_init__(self) -> None:
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
            "psnr": round(self.psnr, 4),
            "psnr_float": round(self.psnr_float, 4),
            "psnr_quantized": round(self.psnr_quantized, 4),
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
        if self.snr is not None:
            summary["snr"] = round(self.snr, 4)
            summary["networks"] = self.header.networks
        return summary


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
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
    kind = adapters.for_source(source, config, sample_rate=sample_rate)
    info = kind.info
    preset = get_preset(config.preset)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)

    budget = kind.budget_bits(config)
    own = spec_class_by_name(config.model).own_codec()
    if own is not None:  # the family trains and codes its own payload (kancoin.grid_codec)
        return _encode_own(own, kind, config, budget, device, progress, output, source, started)
    spec = _choose_spec(config, kind, kind.max_layers(preset), budget)
    if spec.num_params() * info.networks > bitstream.MAX_TOTAL_PARAMS:
        raise InputError(
            f"{info.describe()} needs {spec.num_params() * info.networks} parameters at this "
            f"rate, above the {bitstream.MAX_TOTAL_PARAMS} one file may hold; lower the rate"
        )
    models = [spec.build().to(device) for _ in range(info.networks)]
    threads = config.threads if config.threads is not None else kind.default_threads
    with thread_limit(threads):
        quantized = budget is not None or config.bits is not None
        # fine-tuning takes qat_share of the fit's steps, and that share of a time budget
        # and of the progress bar; explicit --qat-steps come on top, as asked
        preset_share = quantized and config.qat_steps is None
        qat_share = kind.qat_share(spec, preset) if preset_share else 0.0
        fit_share = 1 / (1 + qat_share)
        fit_progress = _part_progress(progress, 0.0, fit_share)
        fits = _fit_parts(models, kind, config, preset, device, fit_progress, fit_share)
        if not quantized:
            qat_steps = 0
        elif config.qat_steps is not None:
            qat_steps = config.qat_steps
        else:
            qat_steps = round(qat_share * sum(f.steps for f in fits) / len(fits))
        tunings = []
        if qat_steps:
            chosen, _ = _allocate(models, spec, kind, config, budget, device)
            tuning_progress = _part_progress(progress, fit_share, 1 - fit_share)
            tunings = _finetune_quantized(
                models, chosen, kind, config, preset, device, qat_steps, tuning_progress
            )
        data, payload, psnr_quantized = _quantize_and_write(
            models, spec, kind, config, budget, device
        )
        # closed loop: the decoder's own path on the real bytes, measured on the written output
        header, _ = bitstream.read(data)
        metrics = kind.measure(decode(data, device=str(device)))
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
    )


def _encode_own(own, kind, config, budget, device, progress, output, source, started):
    """encode() for a model family with its own trainer and payload: the same closed loop."""
    threads = config.threads if config.threads is not None else kind.default_threads
    with thread_limit(threads):
        encoded = own.encode(kind, config, budget, device, progress)
        header, payload = bitstream.read(encoded.data)
        metrics = kind.measure(decode(encoded.data, device=str(device)))
    data = bitstream.write(replace(header, psnr=metrics["psnr"]), payload)
    if output is not None:
        write_bytes_atomic(output, data)
    fit_result = encoded.fit
    return EncodeResult(
        data=data,
        header=bitstream.read(data)[0],
        psnr=metrics["psnr"],
        psnr_float=encoded.psnr_float,
        psnr_quantized=encoded.psnr_quantized,
        steps=fit_result.steps,
        fit_seconds=fit_result.seconds,
        seconds=time.perf_counter() - started,
        device=str(device),
        output=Path(output) if output is not None else None,
        input=Path(source) if isinstance(source, str | Path) else None,
        history=fit_result.history,
        fit_cpu_seconds=fit_result.cpu_seconds,
    )


def _choose_spec(config: EncodeConfig, kind, max_layers: int, budget: float | None) -> ModelSpec:
    base = kind.base_spec(config)
    if config.layers is not None:
        return base.replace(layers=config.layers, width=config.width)
    if budget is None:
        return base
    bits_per_param = float(config.bits) if config.bits else kind.bits_per_param(base)
    return rate.plan(
        base,
        kind.info,
        budget,
        max_layers=max_layers,
        bits_per_param=bits_per_param,
        networks=kind.info.networks,
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
    """Choose steps per tensor, write the file, and coarsen until it fits the budget."""
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
    return data, payload, psnr_from_mse(mse)


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
            raise RateError(
                f"{spec.describe()} cannot be coded in {budget:.0f} bits even at "
                f"{allocation.MIN_BITS} bits per weight; lower --layers/--width or raise "
                f"{kind.rate_option}"
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
    own = header.spec.own_codec()
    if own is not None:
        return own.load_models(header, payload, device)
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
    """Parse .inr bytes or a path to one."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        size = path.stat().st_size
        if size > 1 << 30:
            raise LimitError(f"{path}: {size} bytes is far larger than any .inr we write")
        source = path.read_bytes()
    return bitstream.read(bytes(source))


def default_suffix(header: Header) -> str:
    """What `kancoin decode` writes when no output is named: .png or .wav."""
    return adapters.for_header(header).default_suffix


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
        kind.check_format(output)
    target = kind.output_size(scale=scale, size=size, rate=rate, max_samples=max_pixels)
    torch_device = resolve_device(device)
    signal = kind.render(load_models(header, payload, torch_device), target, torch_device)
    if output is not None:
        write_atomic(output, lambda path: kind.save(path, signal, target))
    return signal


def describe_decoded(header: Header, signal: np.ndarray, *, scale=None, rate=None) -> str:
    """One line on what decode produced: WxH for images, frames and rate for audio."""
    return adapters.for_header(header).describe_output(signal, scale=scale, rate=rate)
