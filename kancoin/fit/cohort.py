"""Training a cohort prior: one SIREN body for many signals (kancoin.prior stores it).

Two ways, measured against each other in docs/PRIOR.md:

- `shared`: the first `body` layers are one set of weights for every member, the later
  layers each member's own (STRAINER, 2024). Each step takes a batch of one member (in
  turn) through the body and that member's head; the body and the head are updated, each
  with its own Adam. The prior is the body.
- `reptile`: a meta-learned start (Nichol et al. 2018): from the meta weights, a few Adam
  steps on one member, then the meta weights move part of the way to the result. The
  prior is the whole network.

Both use the encoder's training step (kancoin.fit.select) on uniform batches, so a step
costs what an encode's step costs; `steps` counts member steps in both, for equal CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from kancoin.fit.select import select_step
from kancoin.models import SirenSpec
from kancoin.signals import image_grid, psnr_from_mse

METHODS = ("shared", "reptile")
WARMUP = 0.02
FINAL_LR_RATIO = 0.05

Progress = Callable[[int, int, float], None]  # step, steps, mean PSNR of recent batches


@dataclass(frozen=True)
class CohortConfig:
    method: str = "shared"
    layers: int = 6  # hidden sine layers of the network the prior is trained as
    width: int = 48
    body: int | None = None  # shared: hidden layers in the body; None: all but the last
    steps: int = 3000  # member steps, both methods
    batch: int = 8192  # coordinates per step
    lr: float = 1e-3
    inner_steps: int = 10  # reptile: Adam steps per member visit
    meta_lr: float = 0.5  # reptile: share of the way to the adapted weights (annealed)
    w0: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}")
        if not 1 <= self.layers <= 63 or not 1 <= self.width <= 4095:
            raise ValueError("layers 1..63, width 1..4095")
        if self.body is not None and not 1 <= self.body <= self.layers:
            raise ValueError(f"body must be 1..{self.layers} layers")
        if self.steps < 1 or self.batch < 1 or self.inner_steps < 1:
            raise ValueError("steps, batch and inner steps must be positive")

    def spec(self, channels: int) -> SirenSpec:
        return SirenSpec(
            in_features=2,
            out_features=channels,
            layers=self.layers,
            width=self.width,
            w0_first=self.w0,
            w0=self.w0,
        )

    def body_layers(self) -> int:
        return self.layers - 1 if self.body is None else self.body


@dataclass
class Member:
    coords: torch.Tensor
    targets: torch.Tensor


def members_from_images(images: list[np.ndarray]) -> list[Member]:
    """Each float32 HxWxC image in [0, 1] as a member: pixel-centre coordinates, targets."""
    out = []
    for image in images:
        height, width, channels = image.shape
        targets = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).reshape(
            -1, channels
        )
        out.append(Member(image_grid(height, width), targets))
    return out


def train(
    members: list[Member], config: CohortConfig, progress: Progress | None = None
) -> tuple[SirenSpec, list[np.ndarray]]:
    """The prior's spec and stored tensors (weight, bias per layer, float32)."""
    if not members:
        raise ValueError("a cohort needs at least one member")
    channels = {m.targets.shape[1] for m in members}
    if len(channels) != 1:
        raise ValueError("every member needs the same channel count")
    spec = config.spec(channels.pop())
    torch.manual_seed(config.seed)
    if config.method == "shared":
        tensors = _train_shared(members, spec, config, progress)
    else:
        tensors = _train_reptile(members, spec, config, progress)
    return spec, [t.detach().cpu().numpy().astype(np.float32) for t in tensors]


def _lr(config: CohortConfig, step: int) -> float:
    """Linear warm-up, then a cosine to FINAL_LR_RATIO of the peak."""
    warm = max(1, round(WARMUP * config.steps))
    if step < warm:
        return config.lr * (step + 1) / warm
    t = (step - warm) / max(1, config.steps - warm)
    ratio = FINAL_LR_RATIO + (1 - FINAL_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * t))
    return config.lr * ratio


def _batch(member: Member, size: int, generator: torch.Generator):
    count = member.coords.shape[0]
    if size >= count:
        return member.coords, member.targets
    index = torch.randint(count, (size,), generator=generator)
    return member.coords[index], member.targets[index]


def _train_shared(members, spec, config, progress) -> list[torch.Tensor]:
    body = config.body_layers()
    first = spec.build()
    models = [first]
    for _ in members[1:]:
        model = spec.build()
        for k in range(body):  # the same Parameter objects: one body
            model.weights[k] = first.weights[k]
            model.biases[k] = first.biases[k]
        models.append(model)
    for model, member in zip(models, members, strict=True):
        model.init_output(member.targets.mean(dim=0))
    body_params = [*first.weights[:body], *first.biases[:body]]
    body_opt = torch.optim.Adam(body_params, lr=config.lr)
    heads = [torch.optim.Adam([*m.weights[body:], *m.biases[body:]], lr=config.lr) for m in models]
    step_fn = select_step(first, torch.device("cpu"))
    generator = torch.Generator().manual_seed(config.seed)
    recent: list[float] = []
    for step in range(config.steps):
        index = step % len(members)
        model = models[index]
        coords, targets = _batch(members[index], config.batch, generator)
        lr = _lr(config, step)
        for opt in (body_opt, heads[index]):
            for group in opt.param_groups:
                group["lr"] = lr
        sq_err = step_fn(model, coords, targets)
        body_opt.step()
        heads[index].step()
        body_opt.zero_grad(set_to_none=False)
        heads[index].zero_grad(set_to_none=False)
        recent = _report(progress, step, config.steps, sq_err, targets, recent)
    return [t for pair in zip(first.weights[:body], first.biases[:body], strict=True) for t in pair]


def _train_reptile(members, spec, config, progress) -> list[torch.Tensor]:
    meta = spec.build()
    meta.init_output(torch.stack([m.targets.mean(dim=0) for m in members]).mean(dim=0))
    work = spec.build()
    step_fn = select_step(work, torch.device("cpu"))
    generator = torch.Generator().manual_seed(config.seed)
    outer = max(1, config.steps // config.inner_steps)
    recent: list[float] = []
    step = 0
    for visit in range(outer):
        member = members[visit % len(members)]
        with torch.no_grad():
            for target, source in zip(work.all_tensors(), meta.all_tensors(), strict=True):
                target.copy_(source)
        optimizer = torch.optim.Adam(work.parameters(), lr=_lr(config, step))
        for _ in range(config.inner_steps):
            for group in optimizer.param_groups:
                group["lr"] = _lr(config, step)
            coords, targets = _batch(member, config.batch, generator)
            sq_err = step_fn(work, coords, targets)
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)
            recent = _report(progress, step, config.steps, sq_err, targets, recent)
            step += 1
        epsilon = config.meta_lr * (1 - visit / outer)
        with torch.no_grad():
            for target, adapted in zip(meta.all_tensors(), work.all_tensors(), strict=True):
                target.add_(adapted - target, alpha=epsilon)
    return list(meta.all_tensors())


def _report(progress, step, steps, sq_err, targets, recent) -> list[float]:
    mse = float(sq_err.mean()) / targets.shape[1]
    recent = [*recent[-49:], mse]
    if progress is not None and (step % 50 == 0 or step == steps - 1):
        progress(step + 1, steps, psnr_from_mse(sum(recent) / len(recent)))
    return recent
