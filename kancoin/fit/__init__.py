"""Fitting a network to a signal: the loop, the samplers, and the step implementations."""

from kancoin.fit.importance import ImportanceSampler  # importing registers `importance`
from kancoin.fit.nint import NintSampler  # and `nint`
from kancoin.fit.samplers import SAMPLERS, Sampler, SamplerOptions, make_sampler
from kancoin.fit.steps import autograd_step
from kancoin.fit.trainer import FitConfig, FitResult, fit

__all__ = [
    "SAMPLERS",
    "FitConfig",
    "FitResult",
    "ImportanceSampler",
    "NintSampler",
    "Sampler",
    "SamplerOptions",
    "autograd_step",
    "fit",
    "make_sampler",
]
