"""From a rate target to a network size.

The header costs a fixed part plus a few bytes per tensor, so tiny budgets want shallow
networks; the rest of the budget buys parameters at the expected coded bits per parameter.
The bit allocation afterwards makes the file fit exactly; this only has to land near.
"""

from __future__ import annotations

from kancoin import bitstream
from kancoin.errors import RateError
from kancoin.models import ModelSpec

FIXED_HEADER_BITS = 8 * 24  # magic .. model fields, flags, psnr, payload length, CRC, padding
TENSOR_HEADER_BITS = sum(int(fmt.split(":")[1]) for _, fmt, _, _ in bitstream.TENSOR_FIELDS)
PAYLOAD_SLACK_BITS = 64  # range coder flush and word rounding
BITS_PER_PARAM = {"siren": 8.0}
WIDTH_PER_LAYER = 4  # COIN's shapes are about 4 units wide per layer (10x40)
MIN_WIDTH = 4


def header_bits(spec: ModelSpec, networks: int = 1) -> int:
    return FIXED_HEADER_BITS + TENSOR_HEADER_BITS * len(spec.tensor_shapes()) * networks


def plan(base: ModelSpec, budget_bits: float, *, max_layers: int, bits_per_param: float):
    """The deepest spec (up to max_layers) that fits the budget and is at least
    WIDTH_PER_LAYER units wide per layer; the widest shallow one otherwise."""
    fallback = None
    for layers in range(max_layers, 0, -1):
        width = _widest(base, layers, budget_bits, bits_per_param)
        if width is None:
            continue
        spec = base.replace(layers=layers, width=width)
        if width >= WIDTH_PER_LAYER * layers:
            return spec
        if fallback is None or width > fallback.width:
            fallback = spec
    if fallback is None:
        smallest = base.replace(layers=1, width=MIN_WIDTH)
        raise RateError(
            f"a budget of {budget_bits:.0f} bits is too small: even a {smallest.describe()} "
            f"needs about {expected_bits(smallest, bits_per_param):.0f} bits"
        )
    return fallback


def expected_bits(spec: ModelSpec, bits_per_param: float) -> float:
    return header_bits(spec) + PAYLOAD_SLACK_BITS + bits_per_param * spec.num_params()


def _widest(base: ModelSpec, layers: int, budget: float, bits_per_param: float) -> int | None:
    lo, hi = MIN_WIDTH, 4095
    if expected_bits(base.replace(layers=layers, width=lo), bits_per_param) > budget:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if expected_bits(base.replace(layers=layers, width=mid), bits_per_param) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
