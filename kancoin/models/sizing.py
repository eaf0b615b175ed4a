"""Sizing a coordinate MLP for a bit budget: as deep as the family allows, wide enough.

The header costs a fixed part plus a few bytes per tensor, so tiny budgets want shallow
networks; the rest of the budget buys parameters at the expected coded bits per parameter.
The bit allocation afterwards makes the file fit exactly; this only has to land near.
"""

from __future__ import annotations

from collections.abc import Callable

from kancoin.models.base import ModelSpec, SizeError

WIDTH_PER_LAYER = 4  # COIN's shapes are about 4 units wide per layer (10x40)
MIN_WIDTH = 4
MAX_WIDTH = 4095


def layers_by_width(
    base: ModelSpec,
    budget_bits: float,
    *,
    overhead_bits: Callable[[ModelSpec], float],
    bits_per_param: float,
    max_layers: int,
    networks: int = 1,
) -> ModelSpec:
    """The deepest spec (up to max_layers, and the family's own cap) whose `networks` copies
    fit the budget and that is at least WIDTH_PER_LAYER units wide per layer; the widest
    shallow one otherwise."""

    def cost(spec: ModelSpec) -> float:
        return overhead_bits(spec) + bits_per_param * spec.num_params() * networks

    if base.plan_max_layers is not None:
        max_layers = min(max_layers, base.plan_max_layers)
    fallback = None
    for layers in range(max_layers, 0, -1):
        width = _widest(lambda w, n=layers: cost(base.replace(layers=n, width=w)) <= budget_bits)
        if width is None:
            continue
        spec = base.replace(layers=layers, width=width)
        if width >= WIDTH_PER_LAYER * layers:
            return spec
        if fallback is None or width > fallback.width:
            fallback = spec
    if fallback is None:
        smallest = base.replace(layers=1, width=MIN_WIDTH)
        raise SizeError(
            f"even a {smallest.describe()} needs about {cost(smallest):.0f} bits",
            smallest_bits=cost(smallest),
        )
    return fallback


def _widest(fits: Callable[[int], bool]) -> int | None:
    lo, hi = MIN_WIDTH, MAX_WIDTH
    if not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
