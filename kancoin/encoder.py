"""The encoder: signal -> planned, fitted networks -> quantized, entropy-coded .inr bytes.

`encode` carries out the plan (kancoin.plan) and closes the loop: after writing the bytes
it decodes them with the decoder's own code path (kancoin.decoder) and reports distortion of
the written output (8-bit image, 16-bit audio) and rate of the real bytes. The loop is
shared by every signal kind; kancoin/adapters.py holds what differs between them.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from kancoin import adapters, allocation, bitstream, entropy, quant, rate
from kancoin.adapters import Part
from kancoin.bitstream import Header, TensorCoding
from kancoin.config import EncodeConfig
from kancoin.decoder import decode
from kancoin.device import resolve_device, thread_limit
from kancoin.errors import RateError
from kancoin.fileio import check_output, write_bytes_atomic
from kancoin.fit import FitConfig, FitResult, fit
from kancoin.fit.qat import StraightThrough
from kancoin.fit.trainer import ProgressFn, set_phase
from kancoin.models import ModelSpec, spec_class_by_name
from kancoin.plan import EncodePlan, Phase, plan, what_would_work
from kancoin.prior import PriorRef
from kancoin.render import render
from kancoin.results import EncodeResult
from kancoin.signals import psnr_from_mse

AUTO_LOSS_DB = 0.1  # bits auto without a rate: quantization may cost at most this much
FINE_TUNE_SEED_OFFSET = 7919  # fine-tuning draws other batches than the fit
FINE_TUNE_EVALS = 4
# the closed loop's decodes have no decode budget: the encoder knows what it built and has
# already paid more than the decode costs
UNBOUNDED = {"max_work": math.inf, "max_memory": sys.maxsize}


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
    Keyword options are flat config options (kancoin.config: e.g. bpp=0.3 or kbps=32,
    steps=300), applied over `config`.
    """
    started = time.perf_counter()
    config = (config or EncodeConfig()).with_options(**options).resolved()
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
    kind = adapters.for_source(source, config, sample_rate=sample_rate)
    own = spec_class_by_name(config.model.model).own_codec()
    if own is not None:  # the family trains and codes its own payload (kancoin.grid_codec)
        result = _carry_out_own(own, kind, config, output=output, progress=progress)
    else:
        result = carry_out(kind, config, plan(kind, config), output=output, progress=progress)
    return replace(
        result,
        input=Path(source) if isinstance(source, str | Path) else None,
        seconds=time.perf_counter() - started,  # loading and planning included
    )


def _carry_out_own(own, kind, config, *, output, progress) -> EncodeResult:
    """encode() for a family with its own trainer and payload: the same closed loop."""
    started = time.perf_counter()
    device = resolve_device(config.runtime.device)
    threads = config.runtime.threads
    with thread_limit(threads if threads is not None else kind.default_threads):
        encoded = own.encode(kind, config, kind.budget_bits(config), device, progress)
        set_phase(progress, "verification")
        header, payload = bitstream.read(encoded.data)
        metrics = kind.measure(decode(encoded.data, device=str(device), **UNBOUNDED))
    data = bitstream.write(replace(header, psnr=metrics["psnr"]), payload)
    if output is not None:
        write_bytes_atomic(output, data)
    fitted = encoded.fit
    return EncodeResult(
        data=data,
        header=bitstream.read(data)[0],
        psnr=metrics["psnr"],
        psnr_float=encoded.psnr_float,
        psnr_quantized=encoded.psnr_quantized,
        steps=fitted.steps,
        fit_seconds=fitted.seconds,
        seconds=time.perf_counter() - started,
        device=str(device),
        output=Path(output) if output is not None else None,
        history=fitted.history,
        fit_cpu_seconds=fitted.cpu_seconds,
    )


def plan_encode(source, *, config: EncodeConfig | None = None, sample_rate=None, **options):
    """The plan `encode` would carry out on `source` (`kancoin encode --plan`), no fitting."""
    config = (config or EncodeConfig()).with_options(**options).resolved()
    kind = adapters.for_source(source, config, sample_rate=sample_rate)
    own = spec_class_by_name(config.model.model).own_codec()
    if getattr(own, "plan", None) is not None:  # the family's own schedule (grid_codec.plan)
        return own.plan(kind, config)
    return plan(kind, config)


def carry_out(kind, config, chosen: EncodePlan, *, output, progress) -> EncodeResult:
    """Fit, fine-tune, allocate, write, decode and measure, as planned."""
    started = time.perf_counter()
    info, spec = kind.info, chosen.spec
    budget = chosen.budget_bits
    device = resolve_device(config.runtime.device)
    torch.manual_seed(chosen.seed)
    models = [spec.build().to(device) for _ in range(info.networks)]
    ref = chosen.prior_ref
    if ref is not None:  # the prior's layers, the first ref.freeze of them frozen
        for model in models:
            chosen.prior.apply(model, ref.freeze)
    tune = chosen.fine_tune
    with thread_limit(chosen.threads):
        fit_share = 1.0 if tune is None else _progress_share(tune)
        set_phase(progress, "fit")
        fit_progress = _part_progress(progress, 0.0, fit_share)
        if chosen.flat and _make_constant(models, kind, device):
            fits = [FitResult(psnr=chosen.flat_psnr, steps=0, seconds=0.0) for _ in models]
        else:
            fits = _fit_parts(models, kind, config, chosen.fit, device, fit_progress)
        tune_steps = 0
        if tune is not None:
            tune_steps = tune.steps
            if tune.share_of_fit is not None:  # as measured: a time budget bounds the fit
                tune_steps = round(tune.share_of_fit * sum(f.steps for f in fits) / len(fits))
        tunings = []
        if tune_steps:
            set_phase(progress, "bit allocation")
            selected, _ = _allocate(models, spec, kind, config, budget, device, ref)
            set_phase(progress, "fine-tuning")
            tuning_progress = _part_progress(progress, fit_share, 1 - fit_share)
            tunings = _finetune_quantized(
                models, selected, kind, config, tune, device, tune_steps, tuning_progress
            )
        set_phase(progress, "bit allocation")
        data, payload, psnr_quantized, table = _quantize_and_write(
            models, spec, kind, config, budget, device, ref
        )
        # closed loop: the decoder's own path on the real bytes, measured on the written output
        set_phase(progress, "verification")
        header, _ = bitstream.read(data)
        metrics = kind.measure(decode(data, device=str(device), prior=chosen.prior, **UNBOUNDED))
        # no more bits than needed: once the target (or, without one, an exact decode) is
        # met, the smallest allocation that still meets it on the decoded output wins
        target = math.inf if chosen.target_psnr is None else chosen.target_psnr
        if table is not None and (chosen.target_psnr is not None or math.isinf(metrics["psnr"])):
            smaller = _smallest_meeting(
                table, spec, kind, budget, target, device, metrics, data, chosen.prior, ref
            )
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
        history=fits[0].history if len(fits) == 1 else [],
        fit_cpu_seconds=sum(f.cpu_seconds for f in fits),
        snr=metrics.get("snr"),
        qat_steps=tune_steps,
        rollbacks=sum(f.rollbacks for f in fits + tunings),
        psnr_target=chosen.target_psnr,
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


def _meets(metrics: dict, target: float) -> bool:
    return metrics["psnr"] >= target


def _smallest_meeting(
    table, spec, kind, budget, target, device, metrics, current: bytes, prior=None, ref=None
):
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
        data, payload = _write(chosen, spec, info, ref)
        if budget is not None and 8 * len(data) > budget:
            return "over", None
        found = kind.measure(decode(data, device=str(device), prior=prior, **UNBOUNDED))
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


def _progress_share(tune: Phase) -> float:
    """The fit's share of the progress bar: by steps, as the preset shares them."""
    share = tune.share_of_fit if tune.share_of_fit is not None else 0.0
    return 1 / (1 + share)


def _fit_parts(models, kind, config, phase: Phase, device, progress) -> list[FitResult]:
    """Fit each part's network in turn; the phase's share of a time budget is shared out by
    part size."""
    fits, done_before = [], 0.0
    budget = config.training.time_budget
    for index, model in enumerate(models):
        part = kind.part(index, device)
        fit_config = replace(
            _fit_config(config, phase, index),
            steps=phase.steps,
            time_budget=None if budget is None else budget * phase.time_share * part.weight,
        )
        report = _part_progress(progress, done_before, part.weight)
        fits.append(fit(model, part.coords, part.targets, fit_config, progress=report))
        done_before += part.weight
    return fits


def _fit_config(config: EncodeConfig, phase: Phase, index: int) -> FitConfig:
    """Network `index`'s settings for `phase`, before its bounds are set."""
    training = config.training
    return FitConfig(
        lr=phase.lr,
        sampler=phase.sampler,
        sampler_options=training.sampler_options,
        batch_fraction=phase.batch_fraction,
        warmup=phase.warmup,
        l1=training.l1,
        seed=training.seed + index,
        step=training.step,
        stop_psnr=phase.stop_psnr,
    )


def _finetune_quantized(
    models, chosen, kind, config, phase: Phase, device, steps, progress
) -> list[FitResult]:
    """Straight-through fine-tuning at the allocated steps (kancoin.fit.qat); the
    allocation then runs again on the result, so a file never depends on the guess."""
    shares = allocation.split(chosen, len(models))
    done_before, results = 0.0, []
    for index, (model, share) in enumerate(zip(models, shares, strict=True)):
        part = kind.part(index, device)
        base = _fit_config(config, phase, index)
        fit_config = replace(
            base, steps=steps, seed=base.seed + FINE_TUNE_SEED_OFFSET, evals=FINE_TUNE_EVALS
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


def _quantize_and_write(models, spec, kind, config, budget, device, ref=None):
    """Choose steps per tensor, write the file, and coarsen until it fits the budget.

    Returns the bytes, payload, PSNR of the quantized float render, and the candidate table
    (None for --bits N, where the steps are fixed)."""
    chosen, table = _allocate(models, spec, kind, config, budget, device, ref)
    info = kind.info
    while True:
        data, payload = _write(chosen, spec, info, ref)
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
    return data, payload, psnr_from_mse(mse), None if config.rate.bits is not None else table


def _allocate(models, spec, kind, config, budget, device, ref=None):
    """Each tensor's step, and the candidate table it was chosen from.

    One Lagrangian spans every network's tensors: each part's distortions are weighted by
    its share of the signal, so bits go wherever they lower the whole signal's MSE most.
    """
    generator = torch.Generator().manual_seed(config.training.seed)
    max_bits = config.rate.bits or allocation.MAX_BITS
    base_mse, table = 0.0, []
    for index, model in enumerate(models):
        part = _allocation_subset(kind.part(index, device), kind.allocation_samples, generator)
        mse, part_table = allocation.candidate_table(
            model, part.coords, part.targets, max_bits=max_bits
        )
        base_mse += part.weight * mse
        table += allocation.weighted(part_table, part.weight)
    info = kind.info
    fixed = rate.header_bits(spec, info, info.networks, ref) + rate.PAYLOAD_SLACK_BITS
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
                + what_would_work(kind, fixed + coarsest.payload_bits)
            )
    elif config.rate.bits is not None:
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


def _write(chosen: allocation.Allocation, spec: ModelSpec, info, ref: PriorRef | None = None):
    """File bytes and payload; the PSNR field is reserved now and filled after decoding."""
    codings = tuple(TensorCoding(c.step_index, c.entropy) for c in chosen.choices)
    payload = entropy.encode([(c.ints, c.entropy) for c in chosen.choices])
    header = Header(
        signal=info, spec=spec, networks=info.networks, tensors=codings, psnr=0.0, prior=ref
    )
    return bitstream.write(header, payload), payload
