"""Which step implementation trains a given model on a given device.

A model names the hand-written step it can use by `step_kind()` (the model contract,
kancoin.models.base), looked up in FAST_STEPS; anything else trains with chunked autograd
on the CPU. On a GPU plain autograd over the whole batch is already fast.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kancoin.fit.fast_step import SirenFastStep
from kancoin.fit.steps import ChunkedAutogradStep, StepFn, autograd_step

STEP_KINDS = ("fast", "autograd")

# step kind (CodedModel.step_kind) -> its step
FAST_STEPS: dict[str, Callable[[], StepFn]] = {
    "siren": SirenFastStep,  # sine layers on model.encode(coords)
}


def select_step(model: nn.Module, device: torch.device, kind: str = "fast") -> StepFn:
    """`autograd`: plain autograd over the batch. `fast`: the fastest exact step here."""
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown step {kind!r} (have: {', '.join(STEP_KINDS)})")
    if kind == "autograd" or device.type != "cpu":
        return autograd_step
    step_kind = getattr(model, "step_kind", None)
    factory = FAST_STEPS.get(step_kind()) if step_kind is not None else None
    if factory is not None:
        return factory()
    spec = getattr(model, "spec", None)
    chunk = spec.train_chunk() if spec is not None else None
    return ChunkedAutogradStep(chunk=chunk) if chunk else ChunkedAutogradStep()
