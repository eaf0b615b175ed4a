"""The 1-D latent grid's encoder (model id 20; docs/AUDIO.md): a clip as one grid row.

Everything but the geometry is the image grid's (kancoin.grid_codec): the same training
against rate, closed rate loop on the real file, payload layout and decoder. The clip is
coded as one model: the header's segment is the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from kancoin import audio, grid_codec
from kancoin.errors import UsageError
from kancoin.fit.grid_trainer import GridFitConfig, fit_grid
from kancoin.grid_codec import GridEncoding, load_models, payload_report
from kancoin.models.grid1d import Grid1DSpec
from kancoin.signals import psnr_from_mse

# preset -> training steps (full-clip)
STEPS = {"fast": 300, "default": 1000, "best": 3000}
# synthesis weight steps searched: 2^-16 .. 2^-4 (images stop at 2^-10; audio at 45-50 dB
# needs finer weights, docs/AUDIO.md)
SYNTHESIS_STEPS = tuple(range(-256, -63, 16))
# training: the image grid's recipe but for three settings measured on 2 s of speech at
# 32 kbps, 1000 steps (docs/AUDIO.md): lambda free to move 8 e-folds instead of 4, no
# straight-through phase, and the latents' learning rate up to 10x the image grid's (they
# must reach larger integers: waveforms want finer precision than pixels), in proportion to
# the budget's bits per sample: at 0.5 on 0.36 or 1 bit per sample the rate term's lambda
# ran away and the fit collapsed to silence (docs/AUDIO.md)
# (latent_gain 1: every level at that rate, as measured; the image grid's default moved to
# 1.41^level after these measurements)
# Then (the rate-use study in docs/AUDIO.md): additive uniform noise instead of soft
# rounding, after a warm start on the clip at half the sample rate (WARM_SHARE x steps
# there, each half the work). Soft rounding left the finest level (one latent per sample,
# the only one that carries 4-8 kHz at 16 kHz) at zero and a third of the budget unused;
# noise lets it grow (its gradient does not vanish at the integers) and the rate loop's
# finer latent step then fills the budget.
FIT_CHANGES = {"latent_gain": 1.0, "lambda_range": 8.0, "ste_share": 0.0, "quantizer": "noise"}
WARM_SHARE = 0.5
LR_LATENTS_PER_BIT = 0.25  # per bit per sample of budget
LR_LATENTS_RANGE = (0.05, 0.5)

__all__ = ["encode", "load_models", "payload_report"]


def base_spec(config, info) -> Grid1DSpec:
    spec = Grid1DSpec(in_features=1, out_features=info.channels, height=1, width=info.frames)
    spec = spec.replace(levels=min(spec.levels, max(1, math.ceil(math.log2(info.frames)) + 1)))
    shape = config.model
    if shape.layers is not None:
        spec = spec.replace(hidden_layers=min(shape.layers, 7), hidden=min(shape.width, 255))
    return spec


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
    """Train and write a 1-D grid for the clip in `kind` (an AudioKind), as one segment."""
    if getattr(kind.info, "sample_rate", None) is None:
        raise UsageError("--model grid1d codes audio only; images take --model grid")
    info = replace(kind.info, segment_frames=kind.info.frames)
    spec = grid_codec.sized_spec(base_spec(config, info), config, budget, info, spec_changes)
    model = grid_codec.build_seeded(spec, config.training.seed, device)
    target = grid_codec.latent_target(spec, info, budget, info.frames)
    training = config.training
    fit_config = GridFitConfig(
        steps=training.steps or STEPS.get(training.preset, STEPS["default"]),
        lam=grid_codec._initial_lambda(target),
        target_bpp=None if target is None else 0.97 * target,
        time_budget=training.time_budget,
        seed=training.seed,
    )
    fit_config = replace(fit_config, warm_steps=round(WARM_SHARE * fit_config.steps))
    fit_config = replace(
        fit_config,
        **(FIT_CHANGES | {"lr_latents": latent_lr(budget, info.frames)} | (fit_changes or {})),
    )
    clip = torch.from_numpy(audio.to_unit(kind.samples)).to(device)[None]  # (1, frames, ch)
    fit = fit_grid(model, clip, fit_config, progress=progress)
    with torch.no_grad():
        rounded = [torch.round(y.detach()) for y in model.latents]
        psnr_float = grid_codec._psnr(model, rounded, clip)
    data, payload, quantized, step_index = _write_best(model, info, clip, budget, fit.lam)
    return GridEncoding(data, payload, psnr_float, quantized, fit, step_index)


def latent_lr(budget: float | None, frames: int) -> float:
    """The latents' learning rate for a budget: LR_LATENTS_PER_BIT per bit per sample."""
    low, high = LR_LATENTS_RANGE
    if budget is None:
        return LR_LATENTS_PER_BIT
    return min(high, max(low, LR_LATENTS_PER_BIT * budget / frames))


def _write_best(model, info, clip, budget, lam):
    """The image grid's rate loop, and the file at the trained latent step when it fits:
    whichever decodes better. Audio latents are small integers (|y| <= 3 on speech), so a
    finer step, which the loop takes to fill the budget, re-rounds them to other values
    and loses more than the bits buy (docs/AUDIO.md)."""
    trained = grid_codec._write(model, info, clip, 1.0, lam, SYNTHESIS_STEPS)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    looped = grid_codec._write_within(model, info, clip, budget, lam, SYNTHESIS_STEPS)
    fits = budget is None or 8 * len(trained.data) <= budget
    if looped[3] == 0 or not fits or psnr_from_mse(trained.mse) <= looped[2]:
        return looped
    model.load_state_dict(state)
    grid_codec._load_written(model, trained)
    return trained.data, trained.payload, psnr_from_mse(trained.mse), 0
