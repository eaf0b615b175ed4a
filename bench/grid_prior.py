"""A cohort prior for the latent-grid model, measured at the bench level (docs/PRIOR.md,
"The latent-grid variant"): no format change, kancoin.grid_codec's own writer.

The prior is a synthesis network and a context (entropy) model trained jointly on crops of
cohort images (never Kodak), each crop with its own latents, the networks shared. A Kodak
crop is then coded with those networks frozen: only its latents are fitted (with the
codec's half-resolution warm start, lambda steering and rate loop), the file is written by
the codec's writer, and its rate is **counted without the shared networks' bits**: what a
format that ships the networks in the decoder would spend. Per-image values the codec
re-fits after training (each level's context bias, the output bias: the mean colour) stay
counted, as the tensors' entropy-coded bits.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch

import kancoin
from kancoin import adapters, bitstream, entropy, grid_codec, latents
from kancoin.config import EncodeConfig
from kancoin.fit import grid_trainer
from kancoin.fit.grid_trainer import fit_grid, proxy
from kancoin.models.grid import GridModel, GridSpec

SHARED = ("synthesis", "context")


def crop_centre(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def train_networks(
    images: list[np.ndarray],
    spec: GridSpec,
    steps: int,
    lam: float,
    lr_latents: float = 0.1,
    lr_networks: float = 0.01,
    seed: int = 0,
) -> tuple[dict, dict]:
    """Synthesis and context trained on every image at once (each with its own latents),
    `steps` member steps in turn; soft rounding + noise as the codec trains (C3), lambda
    fixed. Returns the shared networks' state and a training record."""
    torch.manual_seed(seed)
    started = time.process_time()
    models = [spec.build() for _ in images]
    shared = models[0]
    for model in models[1:]:
        model.synthesis, model.context = shared.synthesis, shared.context
    shared.init_output(torch.from_numpy(np.mean([i.reshape(-1, 3).mean(0) for i in images], 0)))
    targets = [torch.from_numpy(i.reshape(-1, i.shape[-1])) for i in images]
    groups = [{"params": shared.network_parameters(), "lr": lr_networks}]
    for model in models:
        groups += [
            {"params": [y], "lr": lr_latents * 1.41**level} for level, y in enumerate(model.latents)
        ]
    optimizer = torch.optim.Adam(groups)
    base = [g["lr"] for g in optimizer.param_groups]
    warmup = max(1, steps // 10)
    psnrs, bpps = [], []
    for step in range(1, steps + 1):
        member = (step - 1) % len(models)
        model = models[member]
        share = (step - 1) / max(1, steps - 1)
        temperature = 0.3 + (0.1 - 0.3) * share
        scale = min(1.0, step / warmup) * max(0.02, 0.5 * (1 + math.cos(math.pi * share)))
        for group, lr in zip(optimizer.param_groups, base, strict=True):
            group["lr"] = lr * scale
        levels = [proxy(y, "softround", temperature, hard=False) for y in model.latents]
        mse = (model.synthesize(model.upsample_full(levels)) - targets[member]).pow(2).mean()
        bpp = torch.stack(model.context.bits([q[0, 0] for q in levels])).sum() / len(
            targets[member]
        )
        loss = mse + lam * bpp
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for y in model.latents:
                y.clamp_(-latents.LATENT_MAX - 0.49, latents.LATENT_MAX + 0.49)
        if step > steps - len(models):
            psnrs.append(-10 * math.log10(max(float(mse.detach()), 1e-12)))
            bpps.append(float(bpp))
    state = {name: getattr(shared, name).state_dict() for name in SHARED}
    record = {
        "members": len(images),
        "steps": steps,
        "lam": lam,
        "spec": spec.describe(),
        "last_psnr_mean": round(float(np.mean(psnrs)), 2),
        "last_bpp_mean": round(float(np.mean(bpps)), 4),
        "cpu_seconds": round(time.process_time() - started, 1),
    }
    return {k: {n: t.clone() for n, t in v.items()} for k, v in state.items()}, record


def load_networks(model: GridModel, state: dict) -> None:
    """The shared networks into a model of as many or one fewer levels (the warm start's
    half-resolution model: its level l is level l + 1 of the full one)."""
    with torch.no_grad():
        for i, layer in enumerate(model.synthesis):
            weight = state["synthesis"][f"{i}.weight"]
            layer.weight.copy_(weight[:, -layer.weight.shape[1] :] if i == 0 else weight)
            layer.bias.copy_(state["synthesis"][f"{i}.bias"])
        for name, tensor in state["context"].items():
            target = getattr(model.context, name)
            target.copy_(tensor[-target.shape[0] :] if name == "level_bias" else tensor)


def _warm_start_with(state: dict):
    """grid_trainer._warm_start with the shared networks loaded into the half-resolution
    model too (the codec's builds it from a random start)."""
    original = grid_trainer._warm_start

    def warm(model, image, config, progress):
        build = GridSpec.build

        def build_loaded(spec):
            built = build(spec)
            load_networks(built, state)
            return built

        GridSpec.build = build_loaded
        try:
            original(model, image, config, progress)
        finally:
            GridSpec.build = build

    return warm


def per_image_bits(header: bitstream.Header, payload: bytes) -> tuple[int, int]:
    """(all network bits as written, the bits of the per-image network values: each level's
    context bias and the synthesis output bias), from the file itself."""
    ints, _ = grid_codec._split(header, payload)
    synthesis_tensors = 2 * (len(header.spec.synthesis_dims()) - 1)
    own = [ints[synthesis_tensors - 1], ints[synthesis_tensors]]  # output bias, level bias
    own_bits = sum(entropy.choose_params(values)[1] for values in own)
    network_bits = 8 * 4 * int.from_bytes(payload[:4], "little")
    return network_bits, math.ceil(own_bits)


def encode_frozen(
    image: np.ndarray,
    state: dict,
    spec_changes: dict,
    steps: int,
    bpp=0.3,
    *,
    warm: bool = True,
    keep_bias: bool = False,
):
    """A grid file for `image` with the shared networks frozen; its bits counted without
    them. `warm`: the codec's half-resolution warm start (with the shared networks);
    `keep_bias`: the prior's output bias, not the image's mean colour. Returns a row."""
    kind = adapters.ImageKind.load(image)
    config = EncodeConfig().with_options(bpp=bpp, model="grid", steps=steps)
    budget = kind.budget_bits(config)
    chosen = grid_codec.plan(
        kind, config, spec_changes=spec_changes, fit_changes={"lr_networks": 0.0, "tune_steps": 0}
    )
    info, spec = kind.info, chosen.spec
    pixels = info.height * info.width
    own_guess = 16 * (2 * spec.levels + 3)  # per-image values, before the real ones are known
    target = (budget - grid_codec._header_bits(spec, info) - own_guess) / pixels
    fit_config = replace(
        chosen.fit, target_bpp=0.97 * target, lam=grid_codec._initial_lambda(target)
    )
    if not warm:
        fit_config = replace(fit_config, warm_steps=0)
    torch.manual_seed(0)
    started = time.process_time()
    model = spec.build()
    load_networks(model, state)
    for parameter in model.network_parameters():
        parameter.requires_grad_(False)  # frozen: no gradient, no optimizer work
    saved, init_output = grid_trainer._warm_start, GridModel.init_output
    grid_trainer._warm_start = _warm_start_with(state)
    if keep_bias:
        GridModel.init_output = lambda self, mean: None
    try:
        fit = fit_grid(model, torch.from_numpy(kind.image), fit_config)
    finally:
        grid_trainer._warm_start, GridModel.init_output = saved, init_output
    image_t = torch.from_numpy(kind.image)
    # the rate loop on the counted bits: the file's budget is raised by the shared networks'
    first = grid_codec._write(model, info, image_t, 1.0, fit.lam)
    header, payload = bitstream.read(first.data)
    shared_bits = per_image_bits(header, payload)
    raised = budget + shared_bits[0] - shared_bits[1]
    trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for _ in range(4):  # the networks' bits move with the latent step folded into them
        model.load_state_dict(trained)
        data, payload, _, step_index = grid_codec._write_within(
            model, info, image_t, raised, fit.lam
        )
        header, payload = bitstream.read(data)
        network_bits, own_bits = per_image_bits(header, payload)
        counted = 8 * len(data) - network_bits + own_bits
        if counted <= budget:
            break
        raised -= counted - budget + 8
    pixels_out = kancoin.decode(data, device="cpu")
    return {
        "psnr": round(kind.measure(pixels_out)["psnr"], 2),
        "bpp_counted": round(counted / pixels, 4),
        "bpp_file": round(8 * len(data) / pixels, 4),
        "network_bits_dropped": network_bits - own_bits,
        "own_bits": own_bits,
        "latent_step_index": step_index,
        "steps": fit.steps,
        "cpu_seconds": round(time.process_time() - started, 1),
        "model": spec.describe(),
    }
