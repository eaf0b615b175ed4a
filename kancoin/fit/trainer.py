"""The fitting loop: sampler picks coordinates, a step computes gradients, Adam updates.

Bounded by steps and/or wall-clock time; the learning rate follows a cosine over whichever
bound is nearer, so a time-bounded run still anneals. The best full-signal state is kept.

Adam's first steps at the full rate can throw a SIREN into a noise state it never leaves
(kodim02, 0.5 bpp, fast preset: 24.0 dB; 30.8 dB after a 2 % linear warm-up), so the rate
ramps up first. Should a run still collapse later, the divergence guard rolls it back to its
last good state and halves the rate.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from kancoin.fit.qat import StraightThrough
from kancoin.fit.samplers import FitContext, SamplerOptions, make_sampler
from kancoin.fit.select import STEP_KINDS, select_step
from kancoin.fit.steps import StepFn
from kancoin.render import render
from kancoin.signals import psnr_from_mse

DEFAULT_WARMUP = 0.02
STOP_EVAL_SHARE = 0.02


@dataclass(frozen=True)
class FitConfig:
    steps: int | None = 700
    time_budget: float | None = None  # seconds of fitting
    lr: float = 1e-3
    final_lr_ratio: float = 0.05
    warmup: float = DEFAULT_WARMUP  # share of the run over which the rate ramps up linearly
    sampler: str = "uniform"
    batch_fraction: float = 0.2
    sampler_options: SamplerOptions = field(default_factory=SamplerOptions)
    evals: int = 8  # full-signal evaluations over the run, to keep the best state
    seed: int = 0
    step: str = "fast"  # see kancoin.fit.select: "fast" or "autograd"
    guard: bool = True  # roll back and halve the learning rate when the fit collapses
    # rate-aware penalty: l1 * mean |w| over the coded tensors is added to the MSE, so that
    # weights concentrate near zero where the entropy coder's Laplace model codes them cheaply
    l1: float = 0.0
    # stop once a full-signal evaluation reaches this PSNR (a quality target); evaluations
    # then come every STOP_EVAL_SHARE of the run so that the stop is not late
    stop_psnr: float | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ValueError("time budget must be positive")
        if self.lr <= 0:
            raise ValueError("learning rate must be positive")
        if not 0 <= self.warmup < 1:
            raise ValueError("warm-up must be a share of the run in [0, 1)")
        if self.l1 < 0:
            raise ValueError("the L1 weight must be 0 or more")
        if self.step not in STEP_KINDS:
            raise ValueError(f"unknown step {self.step!r} (have: {', '.join(STEP_KINDS)})")


@dataclass
class FitResult:
    psnr: float  # best full-signal PSNR (float network, before quantization)
    steps: int
    seconds: float
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, s, psnr)
    cpu_seconds: float = 0.0  # CPU time of all threads: a speed measure a busy machine skews less
    rollbacks: int = 0  # collapses the divergence guard undid


ProgressFn = Callable[[int, float, float, float], None]  # step, fraction done, psnr, elapsed


def set_phase(progress: ProgressFn | None, name: str) -> None:
    """Tell a progress sink that names phases (kancoin.progress.FitProgress) which one runs;
    a plain callable is left alone."""
    announce = getattr(progress, "phase", None)
    if announce is not None:
        announce(name)


def fit(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    config: FitConfig,
    *,
    step_fn: StepFn | None = None,
    progress: ProgressFn | None = None,
    straight_through: StraightThrough | None = None,
) -> FitResult:
    """Train `model` in place to map coords -> targets; leaves the best state loaded.

    `step_fn` defaults to the step `config.step` selects for the model and device. With
    `straight_through`, every step and evaluation sees the rounded weights (fine-tuning
    for quantization), and the best state is kept rounded: exactly what will be coded.
    """
    if config.steps is None and config.time_budget is None:
        raise ValueError("fitting needs a bound: steps or time_budget")
    if step_fn is None:
        step_fn = select_step(model, coords.device, config.step)
    generator = torch.Generator().manual_seed(config.seed)
    sampler = make_sampler(
        config.sampler,
        coords.shape[0],
        fraction=config.batch_fraction,
        generator=generator,
        options=config.sampler_options,
    )
    context = FitContext(model, coords, targets)
    rounded = straight_through.rounded if straight_through is not None else nullcontext
    if straight_through is None and hasattr(model, "init_output"):  # fresh networks only
        model.init_output(targets.mean(dim=0))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    guard = DivergenceGuard(model, optimizer) if config.guard else None
    coded = list(model.coded_tensors()) if config.l1 else []
    eval_every = _eval_interval(config)
    best_psnr, best_state = -math.inf, None
    history: list[tuple[int, float, float]] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    step, batch_psnr, done = 0, float("nan"), 0.0
    next_eval_at = eval_every
    if straight_through is not None:  # fine-tuning must not end worse than it started
        with rounded():
            best_psnr, best_state = _evaluate(
                model, coords, targets, best_psnr, best_state, history, step, start
            )
    while True:
        elapsed = time.perf_counter() - start
        done = _fraction_done(step, elapsed, config)
        if done >= 1.0:
            break
        lr = config.lr * _cosine(done, config.final_lr_ratio)
        if done < config.warmup:
            lr *= max(done / config.warmup, 0.01)
        if guard is not None:
            lr *= guard.lr_factor
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = sampler.select(step, context)
        if batch.indices is None:
            batch_coords, batch_targets = coords, targets
        else:
            batch_coords, batch_targets = coords[batch.indices], targets[batch.indices]
        optimizer.zero_grad(set_to_none=False)  # steps accumulate into the same buffers
        with rounded():
            sq_err = step_fn(model, batch_coords, batch_targets, batch.weights)
        if config.l1:
            _add_l1_gradient(coded, config.l1)
        optimizer.step()
        sampler.observe(batch, sq_err)
        step += 1
        batch_psnr = psnr_from_mse(float(sq_err.mean()) / targets.shape[1])
        if guard is not None:
            guard.observe(step, batch_psnr)
        if done >= next_eval_at:
            next_eval_at += eval_every
            with rounded():
                best_psnr, best_state = _evaluate(
                    model, coords, targets, best_psnr, best_state, history, step, start
                )
            if config.stop_psnr is not None and best_psnr >= config.stop_psnr:
                break
        if progress is not None:  # the whole signal's PSNR at the last checkpoint
            progress(
                step, done, history[-1][2] if history else math.nan, time.perf_counter() - start
            )
    with rounded():
        best_psnr, best_state = _evaluate(
            model, coords, targets, best_psnr, best_state, history, step, start
        )
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    if progress is not None:
        progress(step, 1.0, best_psnr, seconds)
    return FitResult(
        psnr=best_psnr,
        steps=step,
        seconds=seconds,
        history=history,
        cpu_seconds=time.process_time() - cpu_start,
        rollbacks=0 if guard is None else guard.rollbacks,
    )


def _add_l1_gradient(tensors: list[torch.Tensor], weight: float) -> None:
    """Gradient of weight * mean |w| over all the tensors' entries."""
    scale = weight / sum(t.numel() for t in tensors)
    with torch.no_grad():
        for tensor in tensors:
            tensor.grad.add_(torch.sign(tensor), alpha=scale)


class DivergenceGuard:
    """Watches the smoothed batch PSNR; when it falls far below its peak, the run has left
    its basin (noise does not move a smoothed PSNR by several dB), so parameters and Adam's
    moments go back to the last checkpoint taken near the peak and the learning rate halves.
    """

    DROP_DB = 6.0
    SMOOTHING = 0.05  # weight of the newest batch in the moving average
    CHECKPOINT_EVERY = 50  # steps
    NEAR_PEAK_DB = 1.0  # a checkpoint is only taken this close to the peak
    MAX_ROLLBACKS = 4

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        self.smoothed, self.peak = None, -math.inf
        self.checkpoint = None
        self.lr_factor, self.rollbacks = 1.0, 0

    def observe(self, step: int, batch_psnr: float) -> None:
        if not math.isfinite(batch_psnr):
            batch_psnr = 0.0  # an overflow is a collapse too
        if self.smoothed is None:
            self.smoothed = batch_psnr
        else:
            self.smoothed += self.SMOOTHING * (batch_psnr - self.smoothed)
        self.peak = max(self.peak, self.smoothed)
        if self.smoothed < self.peak - self.DROP_DB and self.checkpoint is not None:
            if self.rollbacks < self.MAX_ROLLBACKS:
                self._roll_back()
        elif self.checkpoint is None or (
            step % self.CHECKPOINT_EVERY == 0 and self.smoothed >= self.peak - self.NEAR_PEAK_DB
        ):
            self.checkpoint = (
                _snapshot(self.model),
                copy.deepcopy(self.optimizer.state_dict()),
                self.smoothed,
            )

    def _roll_back(self) -> None:
        model_state, optimizer_state, smoothed = self.checkpoint
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(copy.deepcopy(optimizer_state))
        self.smoothed = smoothed
        self.lr_factor *= 0.5
        self.rollbacks += 1


def full_psnr(model: nn.Module, coords: torch.Tensor, targets: torch.Tensor) -> float:
    prediction = render(model, coords).clamp_(0.0, 1.0)
    return psnr_from_mse(float((prediction - targets).pow(2).mean()))


def _evaluate(model, coords, targets, best_psnr, best_state, history, step, start):
    value = full_psnr(model, coords, targets)
    history.append((step, time.perf_counter() - start, value))
    if value > best_psnr:
        best_state = _snapshot(model)
        best_psnr = value
    return best_psnr, best_state


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _eval_interval(config: FitConfig) -> float:
    if config.stop_psnr is not None:
        return min(STOP_EVAL_SHARE, 1.0 / max(1, config.evals))
    return 1.0 / max(1, config.evals)


def _fraction_done(step: int, elapsed: float, config: FitConfig) -> float:
    parts = []
    if config.steps is not None:
        parts.append(step / max(1, config.steps))
    if config.time_budget is not None:
        parts.append(elapsed / max(1e-9, config.time_budget))
    return max(parts)


def _cosine(done: float, final_ratio: float) -> float:
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))
