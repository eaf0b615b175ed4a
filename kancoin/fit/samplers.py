"""Which coordinates each training step uses.

A sampler returns indices (and optional importance weights, mean 1) for the step, and may
observe the squared errors the step computed for those indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    indices: torch.Tensor | None  # None means every coordinate, in order
    weights: torch.Tensor | None = None


class Sampler:
    name = "base"

    def __init__(self, num_coords: int, *, fraction: float, generator: torch.Generator):
        if not 0.0 < fraction <= 1.0:
            raise ValueError("batch fraction must be in (0, 1]")
        self.num_coords = num_coords
        self.fraction = fraction
        self.generator = generator
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

    def __init__(self, num_coords: int, *, fraction: float, generator: torch.Generator):
        super().__init__(num_coords, fraction=1.0, generator=generator)

    def select(self, step: int, context: FitContext) -> Batch:
        return Batch(indices=None)


class UniformSampler(Sampler):
    """A fresh random subset (without replacement) each step."""

    name = "uniform"

    def select(self, step: int, context: FitContext) -> Batch:
        perm = torch.randperm(self.num_coords, generator=self.generator)
        return Batch(indices=perm[: self.batch_size].to(context.coords.device))


SAMPLERS: dict[str, type[Sampler]] = {
    FullSampler.name: FullSampler,
    UniformSampler.name: UniformSampler,
}


def make_sampler(
    name: str, num_coords: int, *, fraction: float, generator: torch.Generator
) -> Sampler:
    try:
        cls = SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r} (have: {', '.join(SAMPLERS)})") from None
    return cls(num_coords, fraction=fraction, generator=generator)
