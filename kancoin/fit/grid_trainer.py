"""Training a latent-grid model against rate: loss = MSE + lambda x bits per pixel.

Latents are quantized in training by a proxy that becomes rounding by the end (C3's
recipe): additive uniform noise under soft rounding whose temperature anneals, then a short
straight-through phase on hard-rounded latents. The rate is the float context model's code
length of the proxies. Lambda follows the rate: a dual-ascent step per iteration moves
log(lambda) by the relative gap between the rate and its target, so a run lands near the
budget whatever the image (docs/GRID.md). Steps are full-image: every pixel, every step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import torch

from kancoin.fit.grid_losses import context_bits, synthesis_mse
from kancoin.fit.soap import SOAP
from kancoin.latents import LATENT_MAX, LOG2_SCALE_MIN
from kancoin.models.grid import GridModel
from kancoin.signals import psnr_from_mse

QUANTIZERS = ("softround", "noise", "ste")
OPTIMIZERS = ("adam", "soap")  # for the networks; the latents always train with Adam


@dataclass(frozen=True)
class GridFitConfig:
    steps: int = 1000
    lr_latents: float = 0.1  # level 0; coarser levels faster (latent_gain), docs/GRID.md
    lr_networks: float = 0.01
    latent_gain: float = 1.41  # level l learns at lr_latents x latent_gain^l (C3: 2)
    lam: float = 0.005  # initial lambda (MSE units per bit per pixel)
    target_bpp: float | None = None  # latents' bits per pixel to steer lambda to
    quantizer: str = "softround"  # the training proxy before the straight-through phase
    ste_share: float = 0.15  # last share of steps on hard-rounded latents
    temperature: tuple[float, float] = (0.3, 0.1)  # soft rounding, annealed linearly
    gaussian_noise: tuple[float, float] | None = None  # std, annealed; None: uniform noise
    lambda_range: float = 4.0  # how far log(lambda) can move over the controlled steps
    control_from: float = 0.3  # share of steps after which lambda follows the rate
    lambda_floor: bool = False  # the controller never takes lambda below `lam`
    warmup_share: float = 0.1  # lambda stays fixed and the learning rate ramps up
    batch_fraction: float = 1.0  # share of pixels in the distortion term (rate stays exact)
    warm_steps: int = 0  # steps on the image at half resolution first (a quarter the cost)
    warm_depth: int = 1  # the half-resolution fit warm-starts itself this many times - 1
    # with a rate target, the warm start raises its lambda while its rate is above this share
    # of the target (its levels are the full model's coarser ones) and the full fit starts
    # from that lambda: an image that costs more than `lam` assumed gets a higher first
    # lambda (docs/GRID.md); None: the warm start keeps lam / 4
    warm_rate_share: float | None = None
    freeze_finest: bool = False  # keep the full-resolution level at zero (3/4 of latents)
    optimizer: str = "adam"  # the networks' ("soap": Cool-chic 5's, kancoin.fit.soap)
    resume: bool = False  # train on from the model as it is (no warm start, no output init)
    time_budget: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}")


@dataclass
class GridFitResult:
    steps: int
    seconds: float
    cpu_seconds: float
    lam: float
    psnr: float  # of the last step's proxy reconstruction
    bpp: float  # latents' estimated bits per pixel at the last step
    history: list = field(default_factory=list)  # (step, seconds, psnr, bpp, lambda, hard bpp)


ProgressFn = Callable[[int, float, float, float], None]


WARM_STEP_COST = 0.25  # a half-resolution step: a quarter of the pixels and latents (1-D: half)
CONTROL_EVERY = 10  # steps between measurements of the rounded latents' rate
BUDGET_PROBE_STEPS = 5  # steps timed before a time budget sets the step count


class _Plan:
    """Where the phases of a run of `steps` steps begin."""

    def __init__(self, config: GridFitConfig, steps: int):
        self.steps = steps
        self.hard_from = round(steps * (1 - config.ste_share))
        self.warmup = max(1, round(steps * config.warmup_share))
        self.control_from = round(steps * config.control_from)
        self.gain = config.lambda_range / max(1, self.hard_from - self.control_from) / 0.5


def soft_round(y: torch.Tensor, temperature: float) -> torch.Tensor:
    """C3's soft rounding: rounding as temperature -> 0, identity as it grows."""
    floor = torch.floor(y)
    r = y - floor - 0.5
    return floor + 0.5 + torch.tanh(r / temperature) / (2 * math.tanh(0.5 / temperature))


def proxy(
    y: torch.Tensor, quantizer: str, temperature: float, hard: bool, noise_std: float | None = None
) -> torch.Tensor:
    """The latents as the rate and distortion terms see them at this point of training."""
    if hard or quantizer == "ste":
        return y + (torch.round(y) - y).detach()
    # uniform, or (Cool-chic 4-5) gaussian noise, smaller than uniform's 0.29 std
    noise = torch.rand_like(y) - 0.5 if noise_std is None else torch.randn_like(y) * noise_std
    if quantizer == "noise":
        return y + noise
    return soft_round(soft_round(y, temperature) + noise, temperature)


def fit_grid(
    model: GridModel,
    image: torch.Tensor,
    config: GridFitConfig,
    progress: ProgressFn | None = None,
) -> GridFitResult:
    """Train latents, synthesis and context model on an (H, W, C) image in [0, 1]."""
    started, cpu_started = time.perf_counter(), time.process_time()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    height, width, channels = image.shape
    pixels = height * width
    targets = image.reshape(-1, channels)
    one_d = model.spec.time_axis_only
    shortest = width if one_d else min(height, width)
    warming = (
        bool(config.warm_steps) and model.spec.levels > 1 and shortest >= 4 and not config.resume
    )
    # progress over the whole fit: a half-resolution step does about a quarter of the work
    warm_cost = 2 * WARM_STEP_COST if one_d else WARM_STEP_COST
    warm_work = warm_cost * config.warm_steps if warming else 0.0
    whole = warm_work + config.steps

    def report(share: float, before: float, step: int, done: float, psnr, elapsed) -> None:
        progress(step, (before + done * share) / whole, psnr, elapsed)

    log_lam = math.log(config.lam)
    if warming:
        warm_report = None if progress is None else partial(report, warm_work, 0.0)
        warm_lam = _warm_start(model, image, config, warm_report)
        if config.target_bpp is not None and config.warm_rate_share is not None:
            log_lam = math.log(warm_lam)
    elif not config.resume:
        model.init_output(targets.mean(dim=0))  # the first steps then learn detail
    loop_started = time.perf_counter()
    frozen = 1 if config.freeze_finest and model.spec.levels > 1 else 0
    with torch.no_grad():
        for index, y in enumerate(model.latents[:frozen]):
            y.zero_()
            model.context.level_bias[index, 1] = LOG2_SCALE_MIN  # zeros at the least cost
    optimizers = _optimizers(model, config, frozen)
    scheduled = [(group, group["lr"]) for o in optimizers for group in o.param_groups]
    plan = _Plan(config, config.steps)
    history: list = []
    mse_value, bpp_value, step, hard_bpp = 1.0, 0.0, 0, 0.0
    while step < plan.steps:
        step += 1
        hard = step > plan.hard_from
        t0, t1 = config.temperature
        progress_share = min(1.0, (step - 1) / max(1, plan.hard_from - 1))
        temperature = t0 + (t1 - t0) * progress_share
        noise_std = None
        if config.gaussian_noise is not None:
            n0, n1 = config.gaussian_noise
            noise_std = n0 + (n1 - n0) * progress_share
        ramp = min(1.0, step / plan.warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * (step - 1) / plan.steps))
        for group, lr in scheduled:
            group["lr"] = lr * ramp * max(cosine, 0.02)
        levels = [
            y.detach() if i < frozen else proxy(y, config.quantizer, temperature, hard, noise_std)
            for i, y in enumerate(model.latents)
        ]
        features = (
            model.upsample_full(levels, zero=frozen) if frozen else model.upsample_full(levels)
        )
        if config.batch_fraction < 1.0:
            count = max(1, round(config.batch_fraction * pixels))
            chosen = torch.randint(0, pixels, (count,))
            features, batch_targets = features[chosen], targets[chosen]
        else:
            batch_targets = targets
        mse = synthesis_mse(model, features, batch_targets)
        planes = [level[0, 0] for level in levels]
        bpp = context_bits(model.context, planes, start=frozen) / pixels
        loss = mse + math.exp(log_lam) * bpp
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        with torch.no_grad():
            for y in model.latents:
                y.clamp_(-LATENT_MAX - 0.49, LATENT_MAX + 0.49)
        mse_value, bpp_value = float(mse.detach()), float(bpp.detach())
        if config.target_bpp is not None and plan.control_from < step <= plan.hard_from:
            if (step - plan.control_from) % CONTROL_EVERY == 1 or CONTROL_EVERY == 1:
                # steer on the rate of the rounded latents, the ones the file will hold: the
                # noisy proxy's rate is far higher (measured 0.27 vs 0.16 bpp on a crop)
                with torch.no_grad():
                    rounded = [torch.round(y)[0, 0] for y in model.latents]
                    hard_bpp = float(context_bits(model.context, rounded, frozen)) / pixels
            gap = max(
                0.0 if config.lambda_floor else -0.5, min(0.5, hard_bpp / config.target_bpp - 1)
            )
            log_lam += plan.gain * gap
        elapsed = time.perf_counter() - started
        if step % 25 == 0 or step == plan.steps:
            psnr = psnr_from_mse(mse_value)
            history.append(
                (
                    step,
                    round(elapsed, 2),
                    round(psnr, 3),
                    round(bpp_value, 4),
                    math.exp(log_lam),
                    round(hard_bpp, 4),
                )
            )
            if progress is not None:
                report(config.steps, warm_work, step, step / plan.steps, psnr, elapsed)
        if config.time_budget is not None and step == BUDGET_PROBE_STEPS:
            # a time budget shortens the whole schedule (phases included), once measured
            warm = loop_started - started  # the warm start's share of the budget is spent
            affordable = int((config.time_budget - warm) / ((elapsed - warm) / step))
            if affordable < plan.steps:
                plan = _Plan(config, max(step + 1, affordable))
    torch.random.set_rng_state(generator_state)
    return GridFitResult(
        steps=step,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        lam=math.exp(log_lam),
        psnr=psnr_from_mse(mse_value),
        bpp=bpp_value,
        history=history,
    )


def _optimizers(model: GridModel, config: GridFitConfig, frozen: int) -> list:
    """Adam for the latents (per-level learning rates); Adam or SOAP for the networks."""
    latent_groups = [
        {"params": [y], "lr": config.lr_latents * config.latent_gain**level}
        for level, y in enumerate(model.latents)
        if level >= frozen
    ]
    networks = {"params": model.network_parameters(), "lr": config.lr_networks}
    if config.optimizer == "adam":
        return [torch.optim.Adam([*latent_groups, networks])]
    return [torch.optim.Adam(latent_groups), SOAP([networks])]


def _warm_start(
    model: GridModel, image: torch.Tensor, config: GridFitConfig, progress: ProgressFn | None
) -> float:
    """Train the model's coarser levels on the image at half resolution, then move them in.

    Level l of a grid for the half-size image has the size of level l + 1 of the full one
    and, with align_corners=False, the same continuous field: the half-resolution model's
    latents, synthesis (shifted by one input) and context model carry over as they are; the
    finest level starts at zero, its synthesis column at its random start. Lambda is a
    quarter of the full one: a half-resolution pixel stands for four. A grid on the time
    axis only (spec.time_axis_only: one row) halves the width alone. With a rate target and
    `warm_rate_share`, the half-resolution fit raises its lambda (never lowers it) while its
    rate is above that share of the target. Returns its final lambda in the full fit's units.
    Only raising keeps an image the prior suits on the path it had without steering.
    """
    spec = model.spec
    height, width, _ = image.shape
    one_d = spec.time_axis_only
    padded = torch.nn.functional.pad(
        image.permute(2, 0, 1)[None],
        (0, width % 2, 0, 0 if one_d else height % 2),
        mode="replicate",
    )
    kernel = (1, 2) if one_d else 2
    half = torch.nn.functional.avg_pool2d(padded, kernel)[0].permute(1, 2, 0).contiguous()
    small = spec.replace(height=half.shape[0], width=half.shape[1], levels=spec.levels - 1)
    shrink = 2 if one_d else 4  # pixels of the signal per pixel of the half-size one
    steer = config.target_bpp is not None and config.warm_rate_share is not None
    warm = replace(
        config,
        steps=config.warm_steps,
        warm_steps=config.warm_steps if config.warm_depth > 1 else 0,
        warm_depth=config.warm_depth - 1,
        freeze_finest=False,
        lam=config.lam / shrink,
        target_bpp=config.target_bpp * config.warm_rate_share * shrink if steer else None,
        warm_rate_share=1.0 if steer else None,  # a deeper warm start aims where this one does
        lambda_floor=steer,
        time_budget=None,
    )
    coarse = small.build().to(image.device)
    result = fit_grid(coarse, half, warm, progress)
    with torch.no_grad():
        for level, y in enumerate(coarse.latents):
            model.latents[level + 1].copy_(y)
        synthesis = zip(model.synthesis_tensors(), coarse.synthesis_tensors(), strict=True)
        for i, (full, part) in enumerate(synthesis):
            # the first layer's weight takes one more input: the finest level's column
            (full[:, 1:] if i == 0 else full).copy_(part)
        model.context.level_bias[1:].copy_(coarse.context.level_bias)
        for name in ("w1", "b1", "w2", "b2"):
            if hasattr(coarse.context, name):
                getattr(model.context, name).copy_(getattr(coarse.context, name))
    return result.lam * shrink


def tune_synthesis(
    model: GridModel, image: torch.Tensor, steps: int, lr: float = 1e-3
) -> tuple[float, float]:
    """Fine-tune the synthesis alone on the model's latents as they are (the integers the
    file holds, at the step the rate loop chose): Cool-chic's last, hard-rounded phase.

    The latents and the context model stay fixed, so the latents' rate does not move and
    the features are upsampled once. Returns the PSNR before and after (float synthesis).
    """
    generator_state = torch.random.get_rng_state()
    targets = image.reshape(-1, image.shape[-1])
    with torch.no_grad():
        features = model.upsample_full([y.detach() for y in model.latents])
    params = model.synthesis_tensors()
    optimizer = torch.optim.Adam(params, lr=lr)
    best = None
    before = None
    for step in range(steps + 1):
        mse = synthesis_mse(model, features, targets)
        value = float(mse.detach())
        if before is None:
            before = value
        if best is None or value < best[0]:
            best = (value, [p.detach().clone() for p in params])
        if step == steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        optimizer.zero_grad(set_to_none=True)
        mse.backward()
        optimizer.step()
    with torch.no_grad():
        for p, kept in zip(params, best[1], strict=True):
            p.copy_(kept)
    torch.random.set_rng_state(generator_state)
    return psnr_from_mse(before), psnr_from_mse(best[0])
