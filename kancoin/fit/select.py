"""Which step implementation trains a given model on a given device.

A model family gets a hand-written step either by a `fast_step()` method returning a StepFn
or by an entry in FAST_STEPS keyed by its class; anything else trains with chunked
autograd on the CPU. On a GPU plain autograd over the whole batch is already fast.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kancoin.fit.fast_step import SirenFastStep
from kancoin.fit.steps import ChunkedAutogradStep, StepFn, autograd_step
from kancoin.models.fourier import FourierSiren
from kancoin.models.siren import Siren

STEP_KINDS = ("fast", "autograd")

FAST_STEPS: dict[type[nn.Module], Callable[[], StepFn]] = {
    Siren: SirenFastStep,
    FourierSiren: SirenFastStep,  # a SIREN on encoded coordinates (Siren.encode)
}


def select_step(model: nn.Module, device: torch.device, kind: str = "fast") -> StepFn:
    """`autograd`: plain autograd over the batch. `fast`: the fastest exact step here."""
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown step {kind!r} (have: {', '.join(STEP_KINDS)})")
    if kind == "autograd" or device.type != "cpu":
        return autograd_step
    hook = getattr(model, "fast_step", None)
    if callable(hook):
        return hook()
    factory = FAST_STEPS.get(type(model))
    if factory is not None:
        return factory()
    spec = getattr(model, "spec", None)
    chunk = spec.train_chunk() if spec is not None else None
    return ChunkedAutogradStep(chunk=chunk) if chunk else ChunkedAutogradStep()
