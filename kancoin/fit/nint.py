"""NINT: NTK-guided implicit neural teaching (Zhang et al., CVPR 2026), and a CPU variant.

The NINT score of coordinate i is |(K g)_i|: how far a full-gradient step would move the
network's output there, counting both its own leverage and its coupling to every other
coordinate (kancoin.fit.ntk computes it without forming K).

`paper` mode (the default) follows the published method: each batch is a uniform share xi,
an NTK share (1 - xi) exp(-lambda t / alpha) of top scores (recomputed every alpha rounds,
the chosen coordinates kept in between) and the rest top residuals from a full pass every
round. It trains on 20 % batches, as published.

`importance` mode is kancoin's CPU variant: the `importance` sampler's unbiased Poisson
batches (kancoin.fit.importance), with each residual score multiplied by an NTK leverage
|(K g)_i| / |g_i| measured by NINT's product on a random pool every `nint_leverage_every`
rounds. Neither mode is the default sampler: on this project's CPU the NTK term never paid
for its cost (docs/SAMPLING.md has the numbers), and the default is `importance`.
"""

from __future__ import annotations

import math

import torch

from kancoin.fit.importance import ImportanceSampler
from kancoin.fit.ntk import ntk_scores
from kancoin.fit.samplers import Batch, FitContext, register, residuals, with_uniform

NINT_MODES = ("paper", "importance")
PAPER_BATCH_FRACTION = 0.2  # the published setting; paper mode uses it unless told otherwise
MIN_NTK_SHARE = 1e-3  # below this the paper stops refreshing NTK scores
LEVERAGE_CLAMP = 10.0  # relative leverage is kept within [1/c, c] of the pool median


@register
class NintSampler(ImportanceSampler):
    name = "nint"

    def __init__(self, num_coords: int, **kw):
        super().__init__(num_coords, **kw)
        if self.options.nint_mode not in NINT_MODES:
            raise ValueError(
                f"unknown nint mode {self.options.nint_mode!r} (have: {', '.join(NINT_MODES)})"
            )
        self._ntk_indices = torch.empty(0, dtype=torch.long)
        self._ntk_active = True
        self.leverage = torch.ones(num_coords)

    def select(self, step: int, context: FitContext) -> Batch:
        if self.options.nint_mode == "paper":
            return self._paper(step, context)
        return super().select(step, context)

    def scores(self, step: int, context: FitContext) -> torch.Tensor:
        if step % self.options.nint_leverage_every == 0:
            self._measure_leverage(context)
        return self.leverage * self.residual

    def ntk_share(self, step: int) -> float:
        """The paper's NTK share of a batch at round `step`."""
        o = self.options
        return (1.0 - o.uniform_share) * math.exp(-o.ntk_decay * step / o.refresh_every)

    def _paper(self, step: int, context: FitContext) -> Batch:
        o = self.options
        size = self.batch_size
        residual = None
        if self._ntk_active and step % o.refresh_every == 0:
            share = self.ntk_share(step)
            if share < MIN_NTK_SHARE:
                self._ntk_active = False
                self._ntk_indices = self._ntk_indices[:0]
            else:
                scores, residual = ntk_scores(context.model, context.coords, context.targets)
                self._ntk_indices = torch.topk(scores.cpu(), int(share * size)).indices
        if residual is None:
            residual = residuals(context)
        errors = residual.abs().sum(dim=1).cpu()  # the paper ranks residuals by L1
        errors[self._ntk_indices] = -math.inf
        ranked = size - round(o.uniform_share * size) - self._ntk_indices.shape[0]
        top = torch.topk(errors, max(0, ranked), sorted=False).indices
        chosen = torch.cat([self._ntk_indices, top])
        chosen = with_uniform(chosen, size - chosen.shape[0], self.num_coords, self.generator)
        return Batch(indices=chosen.to(context.coords.device))

    def _measure_leverage(self, context: FitContext) -> None:
        """NINT scores on a random pool, kept as leverage relative to the pool median."""
        count = max(1, round(self.options.nint_leverage_pool * self.num_coords))
        pool = torch.randperm(self.num_coords, generator=self.generator)[:count]
        on_device = pool.to(context.coords.device)
        scores, residual = ntk_scores(
            context.model, context.coords[on_device], context.targets[on_device]
        )
        norms = residual.norm(dim=1).cpu()
        leverage = scores.cpu() / norms.clamp_min(1e-8)
        leverage = leverage / leverage.median().clamp_min(1e-12)
        self.leverage[pool] = leverage.clamp(1.0 / LEVERAGE_CLAMP, LEVERAGE_CLAMP)
        self.residual[pool] = norms
