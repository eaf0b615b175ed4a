"""Choosing each tensor's quantization step by rate-distortion.

For every tensor and every candidate step (half-bit apart) we measure the distortion it adds
on its own (on a fixed subset of coordinates) and estimate its coded size exactly enough.
Distortions of different tensors add up closely, so a Lagrangian choice per tensor,
min D_t(s) + lambda * R_t(s), with lambda searched to meet the target, is near-optimal and
costs one evaluation per (tensor, step), not one per combination.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from kancoin.entropy import EntropyParams, Family, choose_params
from kancoin.quant import dequantize, index_for_bits, quantize
from kancoin.render import render

HALF_BIT = 8  # step-table entries per half bit (STEPS_PER_OCTAVE / 2)
MIN_BITS, MAX_BITS = 2, 16


@dataclass(frozen=True)
class Choice:
    step_index: int
    ints: np.ndarray
    entropy: EntropyParams
    bits: float  # estimated coded bits of the payload part
    distortion: float  # added MSE when only this tensor is quantized


@dataclass(frozen=True)
class Allocation:
    choices: tuple[Choice, ...]

    @property
    def payload_bits(self) -> float:
        return sum(c.bits for c in self.choices)

    @property
    def added_mse(self) -> float:
        return sum(c.distortion for c in self.choices)


def candidate_table(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    *,
    max_bits: int = MAX_BITS,
    min_bits: int = MIN_BITS,
) -> tuple[float, list[list[Choice]]]:
    """Base MSE of the float model and, per coded tensor, its candidate choices (fine first)."""
    tensors = list(model.coded_tensors())
    base = _mse(model, coords, targets)
    table = []
    for tensor in tensors:
        original = tensor.detach().clone()
        finest = index_for_bits(original, max_bits)
        coarsest = index_for_bits(original, min_bits)
        options = []
        for index in range(finest, coarsest + 1, HALF_BIT):
            ints = quantize(original, index)
            entropy, bits = choose_params(ints)
            with torch.no_grad():
                tensor.copy_(torch.from_numpy(dequantize(ints, index)).reshape(tensor.shape))
            added = max(0.0, _mse(model, coords, targets) - base)
            # Monotone envelope: a coarser step is never credited with less distortion than
            # a finer one. Single-tensor "lucky" steps (a value landing on the grid, or an
            # error that happens to cancel the float model's own) do not add up across
            # tensors, and trusting them wrecks the combined result.
            if options:
                added = max(added, options[-1].distortion)
            options.append(Choice(index, ints, entropy, bits, added))
            if added > 50 * max(base, 1e-6):
                break  # coarser steps only get worse; do not spend evaluations on them
        if options and len(options) == len(range(finest, coarsest + 1, HALF_BIT)):
            zero = _zero_choice(model, tensor, coords, targets, base, options[-1])
            if zero is not None:
                options.append(zero)
        with torch.no_grad():
            tensor.copy_(original)
        table.append(options)
    return base, table


def _zero_choice(model, tensor, coords, targets, base: float, coarsest: Choice) -> Choice | None:
    """All zeros, which cost no payload bits, when they distort no more than the coarsest
    step: what a flat image's or a silent clip's weights come to. Never offered otherwise,
    so the allocation of any other signal is unchanged."""
    ints = np.zeros(tuple(tensor.shape), dtype=np.int32)
    with torch.no_grad():
        tensor.zero_()
    added = max(0.0, _mse(model, coords, targets) - base)
    if added > coarsest.distortion:
        return None
    return Choice(coarsest.step_index, ints, EntropyParams(Family.UNIFORM, 0, 0), 0.0, added)


def weighted(table: list[list[Choice]], weight: float) -> list[list[Choice]]:
    """Distortions scaled by a network's share of the signal, so that the tables of several
    networks (audio segments) add up to the whole signal's MSE and one lambda serves all."""
    if weight == 1.0:
        return table
    return [[replace(c, distortion=c.distortion * weight) for c in opts] for opts in table]


def split(allocation: Allocation, networks: int) -> list[Allocation]:
    """Each network's share of an allocation over several networks' tensors, in order."""
    per = len(allocation.choices) // networks
    return [Allocation(allocation.choices[i * per : (i + 1) * per]) for i in range(networks)]


def pick(table: list[list[Choice]], lam: float) -> Allocation:
    """Per tensor, the choice minimising distortion + lam * bits."""
    return Allocation(tuple(min(opts, key=lambda c: c.distortion + lam * c.bits) for opts in table))


def for_rate(table: list[list[Choice]], payload_budget_bits: float) -> Allocation | None:
    """Least distortion whose estimated payload fits the budget; None if nothing fits."""
    coarsest = Allocation(tuple(opts[-1] for opts in table))
    if coarsest.payload_bits > payload_budget_bits:
        return None
    finest = pick(table, 0.0)
    if finest.payload_bits <= payload_budget_bits:
        return finest
    lo, hi = 1e-16, 1.0
    while pick(table, hi).payload_bits > payload_budget_bits and hi < 1e6:
        hi *= 10
    for _ in range(60):  # bisection on log(lambda)
        mid = (lo * hi) ** 0.5
        if pick(table, mid).payload_bits > payload_budget_bits:
            lo = mid
        else:
            hi = mid
    result = pick(table, hi)
    return result if result.payload_bits <= payload_budget_bits else coarsest


def for_distortion(table: list[list[Choice]], base_mse: float, max_loss_db: float) -> Allocation:
    """Fewest bits whose predicted PSNR loss stays within max_loss_db."""
    allowed = base_mse * (10 ** (max_loss_db / 10) - 1)
    lo, hi = 0.0, 1.0
    while pick(table, hi).added_mse <= allowed and hi < 1e12:
        hi *= 10
    if hi >= 1e12:
        return pick(table, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        if pick(table, mid).added_mse <= allowed:
            lo = mid
        else:
            hi = mid
    return pick(table, lo)


def uniform_bits(model: nn.Module, bits: int) -> Allocation:
    """Every tensor at the same signed bit depth (for --bits N)."""
    choices = []
    for tensor in model.coded_tensors():
        index = index_for_bits(tensor, bits)
        ints = quantize(tensor, index)
        entropy, est = choose_params(ints)
        choices.append(Choice(index, ints, entropy, est, float("nan")))
    return Allocation(tuple(choices))


def coarser(table: list[list[Choice]], allocation: Allocation) -> Allocation | None:
    """One notch cheaper: move the tensor with the best bits-saved per distortion-added."""
    best, best_ratio = None, -1.0
    for i, (opts, chosen) in enumerate(zip(table, allocation.choices, strict=True)):
        position = _position(opts, chosen)
        if position + 1 >= len(opts):
            continue
        nxt = opts[position + 1]
        saved = chosen.bits - nxt.bits
        cost = max(nxt.distortion - chosen.distortion, 1e-12)
        if saved > 0 and saved / cost > best_ratio:
            best, best_ratio = (i, nxt), saved / cost
    if best is None:
        return None
    choices = list(allocation.choices)
    choices[best[0]] = best[1]
    return Allocation(tuple(choices))


def coarser_by(table: list[list[Choice]], allocation: Allocation, bits: float) -> Allocation | None:
    """At least one notch cheaper, and as many as it takes to save `bits` (estimated);
    None if nothing is left to coarsen."""
    target = allocation.payload_bits - bits
    result = coarser(table, allocation)
    while result is not None and result.payload_bits > target:
        cheaper = coarser(table, result)
        if cheaper is None:
            break
        result = cheaper
    return result


def fill(table: list[list[Choice]], allocation: Allocation, budget_bits: float) -> Allocation:
    """Spend what the Lagrangian left: move tensors one notch finer while the budget allows.

    Where measured distortions tie (an undertrained or tiny network), the coarsest tensor
    per element goes first, so precision is spread evenly rather than wasted.
    """
    choices = list(allocation.choices)
    positions = [_position(opts, c) for opts, c in zip(table, choices, strict=True)]
    spent = sum(c.bits for c in choices)
    while True:
        best, best_key = None, None
        for i, (opts, pos) in enumerate(zip(table, positions, strict=True)):
            if pos == 0:
                continue
            finer = opts[pos - 1]
            extra = finer.bits - choices[i].bits
            if spent + extra > budget_bits:
                continue
            gain = (choices[i].distortion - finer.distortion) / max(extra, 1e-9)
            key = (gain, -choices[i].bits / max(1, choices[i].ints.size))
            if best_key is None or key > best_key:
                best, best_key = i, key
        if best is None:
            return Allocation(tuple(choices))
        positions[best] -= 1
        spent += table[best][positions[best]].bits - choices[best].bits
        choices[best] = table[best][positions[best]]


def _position(options: list[Choice], choice: Choice) -> int:
    """Where `choice` sits among a tensor's options (the zero option shares its step with
    the coarsest one, and is told apart by its empty alphabet)."""
    zero = choice.entropy.max_abs == 0
    return next(
        k
        for k, c in enumerate(options)
        if c.step_index == choice.step_index and (c.entropy.max_abs == 0) == zero
    )


def load_quantized(model: nn.Module, allocation: Allocation) -> None:
    """Overwrite the model's tensors with their dequantized values (what the decoder sees)."""
    with torch.no_grad():
        for tensor, choice in zip(model.coded_tensors(), allocation.choices, strict=True):
            values = dequantize(choice.ints, choice.step_index).reshape(tensor.shape)
            tensor.copy_(torch.from_numpy(values))


def _mse(model: nn.Module, coords: torch.Tensor, targets: torch.Tensor) -> float:
    prediction = render(model, coords).clamp_(0.0, 1.0)
    return float((prediction - targets).pow(2).mean())
