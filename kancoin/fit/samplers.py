"""Which coordinates each training step uses.

A sampler returns indices (and optional importance weights, mean 1) for the step, and may
observe the squared errors the step computed for those indices. Samplers register by name in
SAMPLERS; `importance` lives in kancoin.fit.importance and `nint` in kancoin.fit.nint (both
imported by the package, so they are always there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kancoin.render import render


@dataclass(frozen=True)
class SamplerOptions:
    """Hyperparameters of the ranked and importance samplers; NINT's symbols in brackets.

    uniform_share (xi): share of each `error` or paper-NINT batch drawn uniformly at random.
    refresh_every (alpha): rounds between full score refreshes. ntk_decay (lambda): the NTK
    share of a paper-NINT batch is (1 - xi) exp(-lambda t / alpha).
    importance_mix: share of an importance batch spread evenly; the rest follows the scores.
    nint_mode: "paper" (the published method, the default) or "importance" (kancoin's CPU
    variant: importance batches whose scores are residual x NTK leverage).
    nint_leverage_every: rounds between NTK leverage measurements in nint's importance mode.
    nint_leverage_pool: share of coordinates measured each time.
    docs/SAMPLING.md has the measurements behind the defaults.
    """

    uniform_share: float = 0.7
    refresh_every: int = 10
    ntk_decay: float = 1.0
    importance_mix: float = 0.5
    nint_mode: str = "paper"
    nint_leverage_every: int = 25
    nint_leverage_pool: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.uniform_share <= 1.0:
            raise ValueError("uniform share must be in [0, 1]")
        if not 0.0 <= self.importance_mix <= 1.0:
            raise ValueError("importance mix must be in [0, 1]")
        if not 0.0 < self.nint_leverage_pool <= 1.0:
            raise ValueError("nint pool must be in (0, 1]")
        if self.refresh_every < 1 or self.nint_leverage_every < 1:
            raise ValueError("refresh intervals must be positive")
        if self.ntk_decay < 0:
            raise ValueError("ntk decay must be non-negative")


@dataclass
class Batch:
    indices: torch.Tensor | None  # None means every coordinate, in order
    weights: torch.Tensor | None = None


class Sampler:
    name = "base"

    def __init__(
        self,
        num_coords: int,
        *,
        fraction: float,
        generator: torch.Generator,
        options: SamplerOptions | None = None,
    ):
        if not 0.0 < fraction <= 1.0:
            raise ValueError("batch fraction must be in (0, 1]")
        self.num_coords = num_coords
        self.fraction = fraction
        self.generator = generator
        self.options = options or SamplerOptions()
        self.batch_size = max(1, round(num_coords * fraction))

    def select(self, step: int, context: FitContext) -> Batch:
        raise NotImplementedError

    def observe(self, batch: Batch, sq_err: torch.Tensor) -> None:
        """Told the per-coordinate squared errors of the batch just trained on."""


@dataclass
class FitContext:
    """What a sampler may look at: the model, all coordinates, all targets."""

    model: torch.nn.Module
    coords: torch.Tensor
    targets: torch.Tensor


class FullSampler(Sampler):
    """Every coordinate every step, as COIN trains."""

    name = "full"

    def __init__(self, num_coords: int, *, fraction: float, generator: torch.Generator, **kw):
        super().__init__(num_coords, fraction=1.0, generator=generator, **kw)

    def select(self, step: int, context: FitContext) -> Batch:
        return Batch(indices=None)


class UniformSampler(Sampler):
    """A fresh random subset (without replacement) each step."""

    name = "uniform"

    def select(self, step: int, context: FitContext) -> Batch:
        perm = torch.randperm(self.num_coords, generator=self.generator)
        return Batch(indices=perm[: self.batch_size].to(context.coords.device))


class ErrorSampler(Sampler):
    """Error-only teaching (INT): the largest residuals, plus a uniform share xi.

    Every alpha rounds one no-grad pass measures the residual of every coordinate; in between,
    each step's own squared errors (measured before its update) replace those of the
    coordinates it trained on, at no cost. No importance weights: the ranked share is trained
    as if it were the whole signal, which is what INT does.
    """

    name = "error"

    def __init__(self, num_coords: int, **kw):
        super().__init__(num_coords, **kw)
        self.errors: torch.Tensor | None = None

    def select(self, step: int, context: FitContext) -> Batch:
        if self.errors is None or step % self.options.refresh_every == 0:
            self.errors = residuals(context).norm(dim=1).cpu()
        ranked = self.batch_size - round(self.options.uniform_share * self.batch_size)
        top = torch.topk(self.errors, ranked, sorted=False).indices
        chosen = with_uniform(top, self.batch_size - ranked, self.num_coords, self.generator)
        return Batch(indices=chosen.to(context.coords.device))

    def observe(self, batch: Batch, sq_err: torch.Tensor) -> None:
        if self.errors is not None and batch.indices is not None:
            self.errors[batch.indices.cpu()] = sq_err.detach().sqrt().cpu()


def with_uniform(
    chosen: torch.Tensor, count: int, num_coords: int, generator: torch.Generator
) -> torch.Tensor:
    """`chosen` followed by `count` coordinates drawn uniformly from those not chosen."""
    if count <= 0:
        return chosen
    free = torch.ones(num_coords, dtype=torch.bool)
    free[chosen] = False
    order = torch.randperm(num_coords, generator=generator)
    return torch.cat([chosen, order[free[order]][:count]])


def residuals(context: FitContext) -> torch.Tensor:
    """prediction - target at every coordinate (chunked, no graph)."""
    return render(context.model, context.coords) - context.targets


SAMPLERS: dict[str, type[Sampler]] = {
    FullSampler.name: FullSampler,
    UniformSampler.name: UniformSampler,
    ErrorSampler.name: ErrorSampler,
}


def register(cls: type[Sampler]) -> type[Sampler]:
    """Add a sampler to the registry under its name (used by modules that define one)."""
    SAMPLERS[cls.name] = cls
    return cls


def make_sampler(
    name: str,
    num_coords: int,
    *,
    fraction: float,
    generator: torch.Generator,
    options: SamplerOptions | None = None,
) -> Sampler:
    try:
        cls = SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r} (have: {', '.join(SAMPLERS)})") from None
    return cls(num_coords, fraction=fraction, generator=generator, options=options)
