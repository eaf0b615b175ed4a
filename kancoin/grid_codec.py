"""The grid family's own encoder and payload (model id 4; docs/GRID.md, docs/FORMAT.md).

Payload: one uint32 (little-endian) word count n, then n words of the networks' tensors coded
by kancoin.entropy exactly as other families code theirs (the header's tensor table), then
the latent levels' words from kancoin.latents. Rate control: lambda is steered to the budget
while training (kancoin.fit.grid_trainer); then a closed loop on the real file size picks the
latents' quantization step (folded into the synthesis' first layer, so the file stores no
extra field): the smallest step whose file fits the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from kancoin import bitstream, entropy, latents, quant
from kancoin.bitstream import Header, TensorCoding
from kancoin.errors import FormatError, InputError, RateError, UsageError
from kancoin.fit.grid_trainer import GridFitConfig, GridFitResult, fit_grid, tune_synthesis
from kancoin.fit.trainer import set_phase
from kancoin.models import spec_class_by_name
from kancoin.models.grid import GridModel, GridSpec
from kancoin.signals import psnr_from_mse

# preset -> training steps (full-image): each family's GridSpec.preset_steps; docs/GRID.md
STEPS = GridSpec.preset_steps
WARM_SHARE = 0.5  # half-resolution warm-start steps per full step (~1/4 the cost each)
SYNTHESIS_STEPS = tuple(range(-160, -63, 16))  # candidate steps 2^-10 .. 2^-4 (index / 16)
LATENT_STEP_RANGE = (-128, 96)  # latent step 2^(i / 64): 0.25 .. 2.8
NETWORK_BITS_GUESS = 9.0  # bits per network parameter before the real ones are known
RATE_FLOOR = 0.9  # a file uses at least this share of the budget when the loop can
TUNE_STEPS = 100  # synthesis fine-tuning on the written latents (0: none)
TUNE_LR = 1e-3
FILL = "floor"  # a step-1 file under RATE_FLOOR: re-quantize just to the floor (or "budget")
REFINE_STEPS = 6  # halvings of one step index when it jumps past the floor (1/4096 octave)
FLOOR_MARGIN = 0.01  # "floor" aims this far above RATE_FLOOR: the fine-tuned rewrite may shrink
FREEZE_MAX_BPP = 0.4  # budgets up to this keep the finest level at zero (measured at 0.3)
FROZEN_STEP_GAIN = 4 / 3  # a frozen finest level makes a step ~25 % cheaper
REPAIR_ROUNDS = 3  # short fits at a higher lambda when a file is over the budget (id 22)
REPAIR_STEPS = 100
REPAIR_LR = 0.25  # of the schedule's peak learning rates
REPAIR_TARGET = 0.96  # lambda is raised for this share of the budget
REPAIR_POWER = 3.0  # rate ~ lambda^(-1/3) near the operating point


@dataclass
class GridEncoding:
    """What codec.encode needs back from a model-owned encoder."""

    data: bytes
    payload: bytes
    psnr_float: float
    psnr_quantized: float
    fit: GridFitResult
    latent_step_index: float = 0  # the rate loop's latent step 2^(i / 64); 0: as trained
    psnr_written: float = 0.0  # of the first file, before the synthesis fine-tuning
    psnr_tuned: float = 0.0  # float synthesis after fine-tuning on the written latents
    step1_share: float = 0.0  # share of the budget the trained latents take at step 1


def base_spec(config, info) -> GridSpec:
    family = spec_class_by_name(config.model.model)
    if not issubclass(family, GridSpec):
        family = GridSpec
    spec = family(in_features=2, out_features=info.channels, height=info.height, width=info.width)
    levels = min(spec.levels, max(1, math.ceil(math.log2(max(info.height, info.width))) + 1))
    spec = spec.replace(levels=levels)
    shape = config.model
    if shape.layers is not None:
        spec = spec.replace(hidden_layers=min(shape.layers, 7), hidden=min(shape.width, 255))
    return spec


@dataclass(frozen=True)
class GridPlan:
    """What a grid encode will do, decided before fitting (`kancoin encode --plan`)."""

    signal: object  # the image's header record
    spec: GridSpec
    budget_bits: float | None
    latent_bpp: float | None  # the latents' share of the budget, bits per pixel
    fit: GridFitConfig
    tune_steps: int  # synthesis fine-tuning on the written latents
    fill: str  # under the floor: "floor" (the least re-quantization) or "budget" (all of it)
    threads: int | None
    seed: int

    def describe(self) -> str:
        fit = self.fit
        rate = "no rate target"
        if self.budget_bits is not None:
            rate = (
                f"budget {self.budget_bits:.0f} bits "
                f"({self.signal.rate(self.budget_bits):.4g} {self.signal.rate_unit}), latents "
                f"about {self.latent_bpp:.4g} bpp, lambda from {fit.lam:.3g} steered to it"
            )
        steps = f"{fit.steps} full-image steps"
        if fit.warm_steps:
            steps += f" after {fit.warm_steps} at half resolution (warm start)"
        if fit.time_budget is not None:
            steps += f" (fewer if {fit.time_budget:g} s would be exceeded)"
        if fit.freeze_finest:
            steps += ", finest level frozen at zero (flagged: no bits)"
        hard = round(fit.steps * (1 - fit.ste_share))
        noise = "uniform"
        if fit.gaussian_noise is not None:
            noise = f"gaussian {fit.gaussian_noise[0]:g} -> {fit.gaussian_noise[1]:g}"
        return "\n".join(
            [
                f"signal  {self.signal.describe()}",
                f"model   {self.spec.describe()}, {self.spec.num_network_params()} network "
                f"parameters, {self.spec.num_latents()} latents, "
                f"{self.spec.macs_per_pixel()} multiplications per pixel",
                f"rate    {rate}",
                f"phase   fit: {steps}, Adam lr {fit.lr_latents:g} x {fit.latent_gain:g}^level "
                f"(latents) / {'SOAP ' if fit.optimizer == 'soap' else ''}"
                f"{fit.lr_networks:g} (networks), warm-up "
                f"{fit.warmup_share:.0%}, cosine; {fit.quantizer} quantization (temperature "
                f"{fit.temperature[0]:g} -> {fit.temperature[1]:g}, {noise} noise) "
                + (f"to step {hard}, then straight-through rounding" if hard < fit.steps else ""),
                "phase   write: latent step by a closed loop on the file size (under "
                f"{RATE_FLOOR:.0%} of the budget: fill to the {self.fill}), synthesis step by "
                "rate-distortion",
                f"phase   fine-tune: {self.tune_steps} synthesis steps on the written latents, "
                f"then write again",
            ]
        )

    def summary(self) -> dict:
        fit = self.fit
        return {
            "signal": self.signal.describe(),
            "model": self.spec.describe(),
            "params": self.spec.num_params(),
            "latents": self.spec.num_latents(),
            "macs_per_pixel": self.spec.macs_per_pixel(),
            "budget_bits": self.budget_bits,
            "latent_bpp": self.latent_bpp,
            "phases": [
                {
                    "name": "fit",
                    "steps": fit.steps,
                    "warm_steps": fit.warm_steps,
                    "lr_latents": fit.lr_latents,
                    "latent_gain": fit.latent_gain,
                    "lr_networks": fit.lr_networks,
                    "quantizer": fit.quantizer,
                    "ste_share": fit.ste_share,
                    "freeze_finest": fit.freeze_finest,
                    "lambda": fit.lam,
                },
                {"name": "fine-tune", "steps": self.tune_steps, "lr": TUNE_LR},
            ],
            "threads": self.threads,
            "seed": self.seed,
        }


def plan(
    kind, config, *, spec_changes: dict | None = None, fit_changes: dict | None = None
) -> GridPlan:
    """The spec, rate target and schedule of a grid encode of `kind` (an ImageKind).

    spec_changes / fit_changes override GridSpec / GridFitConfig fields (bench/grid.py);
    fit_changes may also hold tune_steps and fill (not GridFitConfig fields)."""
    info = kind.info
    if getattr(info, "height", None) is None:
        raise UsageError("--model grid codes images only")
    budget = kind.budget_bits(config)
    spec = sized_spec(base_spec(config, info), config, budget, info, spec_changes)
    pixels = info.height * info.width
    target = latent_target(spec, info, budget, pixels)
    training = config.training
    # at low rates the full-resolution level ends all zero anyway (docs/GRID.md): freezing it
    # saves a quarter of a step's work, which a preset spends on more steps
    freeze = (
        spec.freezes_finest
        and budget is not None
        and budget / pixels <= FREEZE_MAX_BPP
        and spec.levels > 1
    )
    presets = spec.preset_steps
    steps = training.steps or round(
        presets.get(training.preset, presets["default"]) * (FROZEN_STEP_GAIN if freeze else 1)
    )
    fit_config = GridFitConfig(
        steps=steps,
        warm_steps=round(WARM_SHARE * steps),
        lam=_initial_lambda(target, spec.lambda_at_03),
        target_bpp=None if target is None else 0.97 * target,
        freeze_finest=freeze,
        time_budget=training.time_budget,
        seed=training.seed,
        **spec.fit_defaults,
    )
    fit_changes = dict(fit_changes or {})
    tune_steps = fit_changes.pop("tune_steps", TUNE_STEPS)  # not GridFitConfig fields
    fill = fit_changes.pop("fill", FILL)
    if fill not in ("floor", "budget"):
        raise UsageError(f"fill must be 'floor' or 'budget', not {fill!r}")
    threads = config.runtime.threads
    return GridPlan(
        signal=info,
        spec=spec,
        budget_bits=budget,
        latent_bpp=target,
        fit=replace(fit_config, **fit_changes),
        tune_steps=tune_steps,
        fill=fill,
        threads=threads if threads is not None else kind.default_threads,
        seed=training.seed,
    )


def encode(
    kind,
    config,
    budget: float | None,
    device,
    progress=None,
    *,
    spec_changes: dict | None = None,
    fit_changes: dict | None = None,
) -> GridEncoding:
    """Train and write a grid model for the image in `kind` (an ImageKind), as `plan` says."""
    chosen = plan(kind, config, spec_changes=spec_changes, fit_changes=fit_changes)
    info = kind.info
    model = build_seeded(chosen.spec, chosen.seed, device)
    image = torch.from_numpy(kind.image).to(device)
    fit = fit_grid(model, image, chosen.fit, progress=progress)
    lam, first = fit.lam, None
    if model.spec.repairs_rate and budget is not None:
        lam, first = _repair_rate(model, info, image, budget, chosen.fit, lam, progress)
    set_phase(progress, "bit allocation")
    with torch.no_grad():
        # float networks on the rounded latents: what quantizing the networks then costs
        psnr_float = _psnr(model, [torch.round(y.detach()) for y in model.latents], image)
    report: dict = {}
    data, payload, quantized, step_index = _write_within(
        model, info, image, budget, lam, report=report, fill=chosen.fill, first=first
    )
    written, tuned = quantized, psnr_float
    if chosen.tune_steps:
        # the model now holds the file's integers (step folded into the synthesis): tune the
        # synthesis to them, then write again (its rate barely moves; the loop re-checks)
        set_phase(progress, "fine-tuning")
        _, tuned = tune_synthesis(model, image, chosen.tune_steps, TUNE_LR)
        set_phase(progress, "bit allocation")
        data, payload, quantized, again = _write_within(model, info, image, budget, lam, finest=0)
        step_index += again
    return GridEncoding(
        data,
        payload,
        psnr_float,
        quantized,
        fit,
        step_index,
        written,
        tuned,
        report.get("step1_share", 0.0),
    )


def _repair_rate(
    model: GridModel, info, image, budget: float, config: GridFitConfig, lam, progress=None
) -> tuple[float, _Written]:
    """Over the budget at latent step 1: train on at a higher lambda rather than re-quantize.

    Latents trained without a straight-through phase sit on integers, so a coarser latent
    step changes whole classes of them at once and the file's size is not monotone in it
    (kodim07: 3 % over, the fitting step 2.35x coarser, -6.6 dB; docs/GRID.md). Up to
    REPAIR_ROUNDS short fits at a reduced learning rate, each with lambda
    raised for the overshoot, until the step-1 file fits: the schedule's soft rounding again
    from its start (at its end latents on integers get no gradient). Returns the lambda and
    the step-1 file of the model as it is left (the rate loop's first attempt). Each round
    is a phase of `progress`, its steps reported with the fit done."""
    report = None
    if progress is not None:

        def report(step: int, done: float, psnr: float, elapsed: float) -> None:
            progress(step, 1.0, psnr, elapsed)

    for done in range(REPAIR_ROUNDS + 1):
        written = _write(model, info, image, 1.0, lam)
        share = 8 * len(written.data) / budget
        if share <= 1.0 or done == REPAIR_ROUNDS:
            break
        lam *= (share / REPAIR_TARGET) ** REPAIR_POWER
        set_phase(progress, f"rate repair {done + 1}/{REPAIR_ROUNDS}: {share:.0%} of the budget")
        repair = replace(
            config,
            steps=REPAIR_STEPS,
            warm_steps=0,
            lam=lam,
            target_bpp=None,
            time_budget=None,
            lr_latents=config.lr_latents * REPAIR_LR,
            lr_networks=config.lr_networks * REPAIR_LR,
            resume=True,
        )
        fit_grid(model, image, repair, report)
    return lam, written


def sized_spec(spec: GridSpec, config, budget, info, spec_changes: dict | None) -> GridSpec:
    """The networks sized to the budget (unless the user gave a shape), then the caller's
    changes; refused before training when a reader would refuse the file."""
    if config.model.layers is None:
        spec = spec.size_for_budget(budget, NETWORK_BITS_GUESS)
    spec = spec.replace(**(spec_changes or {}))
    if spec.num_params() > bitstream.MAX_TOTAL_PARAMS:
        raise InputError(
            f"{info.describe()} needs {spec.num_latents()} latents, above the "
            f"{bitstream.MAX_TOTAL_PARAMS} parameters one file may hold"
        )
    return spec


def latent_target(spec: GridSpec, info, budget: float | None, samples: int) -> float | None:
    """The latents' share of the budget in bits per pixel (or sample): what the header and
    the networks (guessed at NETWORK_BITS_GUESS per weight) leave."""
    if budget is None:
        return None
    network_bits = NETWORK_BITS_GUESS * spec.num_network_params()
    target = (budget - _header_bits(spec, info) - network_bits) / samples
    if target <= 0:
        raise RateError(f"{budget:.0f} bits cannot hold a {spec.describe()}")
    return target


def build_seeded(spec: GridSpec, seed: int, device) -> GridModel:
    """The spec's networks with initial weights from `seed`: the same file each run,
    whatever the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec.build().to(device)


def _initial_lambda(target_bpp: float | None, at_03: float = GridSpec.lambda_at_03) -> float:
    """A first lambda for a latents' rate (`at_03` for 0.3 bpp); the trainer steers it."""
    if target_bpp is None:
        return 0.002
    return float(min(0.5, max(1e-5, at_03 * (0.3 / max(target_bpp, 1e-3)) ** 2)))


def _header_bits(spec: GridSpec, info) -> int:
    coding = TensorCoding(0, entropy.EntropyParams(entropy.Family.UNIFORM, 0, 0))
    tensors = (coding,) * len(spec.tensor_shapes())
    header = Header(signal=info, spec=spec, networks=1, tensors=tensors, psnr=0.0)
    return 8 * (len(bitstream.header_bytes(header)) + bitstream.CRC_BYTES)


def _psnr(model: GridModel, levels: list[torch.Tensor], image: torch.Tensor) -> float:
    pixels = model.synthesize(model.upsample_full(levels)).clamp(0, 1)
    return psnr_from_mse(float((pixels - image.reshape(pixels.shape)).pow(2).mean()))


@dataclass
class _Written:
    data: bytes
    payload: bytes
    mse: float


def _write_within(
    model: GridModel,
    info,
    image,
    budget,
    lam,
    synthesis_steps=SYNTHESIS_STEPS,
    *,
    finest=LATENT_STEP_RANGE[0],
    report: dict | None = None,
    fill: str = "budget",
    first: _Written | None = None,
):
    """Write at latent step 1; when over the budget (or well under), bisect the step.

    `synthesis_steps`: the synthesis steps searched (audio needs finer ones than images).
    `finest`: the smallest step index to try; 0 once the latents are integers already
    (a step below 1 would only spread the same integers over more bits).
    `report`, when given, receives `step1_share`: the step-1 file's share of the budget.
    `first`: the step-1 file when the caller has written it already.
    `fill`: when the step-1 file is under RATE_FLOOR, "budget" takes the finest step that
    fits, "floor" the coarsest that reaches the floor (re-quantizing trained integers
    costs quality; docs/GRID.md)."""
    cache: dict[float, _Written] = {} if first is None else {0: first}

    def attempt(index: float) -> _Written:
        if index not in cache:
            step = 2.0 ** (index / 64)
            cache[index] = _write(model, info, image, step, lam, synthesis_steps)
        return cache[index]

    def fits(index: float) -> bool:
        return budget is None or 8 * len(attempt(index).data) <= budget

    def reaches(index: float) -> bool:
        return 8 * len(attempt(index).data) >= (RATE_FLOOR + FLOOR_MARGIN) * budget

    chosen = 0
    if budget is not None:
        low, high = finest, LATENT_STEP_RANGE[1]
        if not fits(0) or 8 * len(attempt(0).data) < RATE_FLOOR * budget:
            if fits(0):
                high = 0
            elif not fits(high):
                raise RateError(f"the grid model cannot be coded in {budget:.0f} bits; raise --bpp")
            if fill == "floor" and fits(0) and reaches(low):
                high = 0  # reaches(low), not reaches(high)
                while high - low > 1:
                    middle = (low + high) // 2
                    low, high = (middle, high) if reaches(middle) else (low, middle)
                chosen = low if fits(low) else high
            elif fits(low):
                chosen = low
            else:
                while high - low > 1:  # fits(high), not fits(low)
                    middle = (low + high) // 2
                    low, high = (low, middle) if fits(middle) else (middle, high)
                chosen = high
                if not reaches(high):
                    # straight-through training leaves many latents on a rounding boundary:
                    # one index (1 % of step) can flip enough of them to drop from over the
                    # budget to under the floor (kodim07: 101 % -> 88 %); bisect finer
                    for _ in range(REFINE_STEPS):
                        middle = (low + high) / 2
                        low, high = (low, middle) if fits(middle) else (middle, high)
                    chosen = high
    written = attempt(chosen)
    _load_written(model, written)
    if report is not None and budget is not None:
        report["step1_share"] = 8 * len(attempt(0).data) / budget
    return written.data, written.payload, psnr_from_mse(written.mse), chosen


def _load_written(model: GridModel, written: _Written) -> None:
    header, payload = bitstream.read(written.data)
    loaded = load_models(header, payload, torch.device("cpu"))[0]
    model.load_state_dict(
        {k: v.to(model.latents[0].device) for k, v in loaded.state_dict().items()}
    )


def _write(
    model: GridModel, info, image, latent_step: float, lam: float, synthesis_steps=SYNTHESIS_STEPS
) -> _Written:
    """One file: latents at `latent_step`, the synthesis' first layer scaled to match."""
    spec = model.spec
    with torch.no_grad():
        ints = [
            torch.round(y[0, 0].double() / latent_step)
            .clamp_(-latents.LATENT_MAX, latents.LATENT_MAX)
            .to(torch.int64)
            for y in model.latents
        ]
        features = model.upsample_full([q.to(image.dtype)[None, None] for q in ints])
    synthesis, mse = _quantize_synthesis(model, features, image, lam, latent_step, synthesis_steps)
    context = [
        np.clip(
            quant.quantize(t, latents.CONTEXT_STEP_INDEX),
            -latents.CONTEXT_MAX_INT,
            latents.CONTEXT_MAX_INT,
        )
        for t in model.context.coded_tensors()
    ]
    layout = latents.LAYOUTS[spec.context_layout]
    context = latents.refit_level_bias([q.cpu().numpy() for q in ints], context, layout)
    context_codings = [entropy.choose_params(c)[0] for c in context]
    coded = synthesis + [
        (c, p, latents.CONTEXT_STEP_INDEX) for c, p in zip(context, context_codings, strict=True)
    ]
    network_words = entropy.encode([(c, p) for c, p, _ in coded])
    latent_words, _ = latents.encode([q.cpu().numpy() for q in ints], context, layout)
    payload = (
        np.array([len(network_words) // 4], dtype="<u4").tobytes() + network_words + latent_words
    )
    codings = tuple(TensorCoding(step, params) for _, params, step in coded)
    header = Header(signal=info, spec=spec, networks=1, tensors=codings, psnr=0.0)
    return _Written(bitstream.write(header, payload), payload, mse)


def _quantize_synthesis(
    model: GridModel, features, image, lam, latent_step: float, steps=SYNTHESIS_STEPS
):
    """Synthesis tensors at the one step (of a few) minimising MSE + lambda x bits/pixel;
    the first layer takes the latents' step, as the file holds the latents' integers."""
    pixels = features.shape[0]
    targets = image.reshape(pixels, -1)
    best = None
    weights = [t.detach() for t in model.synthesis_tensors()]
    weights[0] = weights[0] * latent_step
    for step_index in steps:
        coded, bits, dequantized = [], 0.0, []
        with torch.no_grad():
            for w in weights:
                ints = quant.quantize(w, step_index)
                params, cost = entropy.choose_params(ints)
                coded.append((ints, params, step_index))
                bits += cost
                value = torch.from_numpy(quant.dequantize(ints, step_index))
                dequantized.append(value.to(features.device).reshape(w.shape))
            h = model.synthesize_with(dequantized, features)
            mse = float((h.clamp(0, 1) - targets).pow(2).mean())
        cost = mse + lam * bits / pixels
        if best is None or cost < best[0]:
            best = (cost, coded, mse)
    return best[1], best[2]


def _split(header: Header, payload: bytes) -> tuple[list[np.ndarray], bytes]:
    """The networks' integers and the latent section's bytes."""
    if len(payload) < 4:
        raise FormatError("grid payload is truncated")
    words = int.from_bytes(payload[:4], "little")
    if 4 + 4 * words > len(payload):
        raise FormatError(f"grid payload declares {words} network words; it has fewer")
    counts = header.tensor_counts()
    ints = entropy.decode(
        payload[4 : 4 + 4 * words],
        list(zip(counts, (t.entropy for t in header.tensors), strict=True)),
    )
    return ints, payload[4 + 4 * words :]


def _context_ints(header: Header, ints: list[np.ndarray]) -> list[np.ndarray]:
    synthesis_tensors = len(header.spec.synthesis_shapes())
    codings = header.tensors[synthesis_tensors:]
    if any(c.step_index != latents.CONTEXT_STEP_INDEX for c in codings):
        raise FormatError("grid context model is not at its fixed-point step")
    return ints[synthesis_tensors:]


def load_models(header: Header, payload: bytes, device: torch.device) -> list[GridModel]:
    """Rebuild the model of a parsed grid file (one network)."""
    ints, latent_bytes = _split(header, payload)
    context = _context_ints(header, ints)
    spec = header.spec
    layout = latents.LAYOUTS[spec.context_layout]
    levels, _ = latents.decode(latent_bytes, spec.level_shapes(), context, layout)
    model = spec.build()
    with torch.no_grad():
        for tensor, values, coding in zip(model.coded_tensors(), ints, header.tensors, strict=True):
            tensor.copy_(
                torch.from_numpy(quant.dequantize(values, coding.step_index)).reshape(tensor.shape)
            )
        for tensor, level in zip(model.latents, levels, strict=True):
            tensor.copy_(torch.from_numpy(level.astype(np.float32)).reshape(tensor.shape))
    return [model.to(device).eval()]


def payload_report(header: Header, payload: bytes) -> dict:
    """The rate split of a grid file: bits of the networks and of each latent level."""
    ints, latent_bytes = _split(header, payload)
    context = _context_ints(header, ints)
    layout = latents.LAYOUTS[header.spec.context_layout]
    _, bits = latents.decode(latent_bytes, header.spec.level_shapes(), context, layout)
    network_bytes = int.from_bytes(payload[:4], "little") * 4
    return {
        "network_bits": 8 * network_bytes,
        "latent_bits": 8 * len(latent_bytes),
        "latent_bits_per_level": [round(b, 1) for b in bits],
        "macs_per_pixel": header.spec.macs_per_pixel(),
    }
