"""From a rate target to a network size.

The header costs a fixed part plus a few bytes per tensor, so tiny budgets want shallow
networks; the rest of the budget buys parameters at the expected coded bits per parameter.
The bit allocation afterwards makes the file fit exactly; this only has to land near.
"""

from __future__ import annotations

from kancoin import bitstream
from kancoin.entropy import EntropyParams, Family
from kancoin.errors import RateError
from kancoin.models import ModelSpec

PAYLOAD_SLACK_BITS = 64  # range coder flush and word rounding
# coded bits per weight the plan aims at (docs/RD.md)
BITS_PER_PARAM = {"siren": 7.0, "kan": 7.0, "fourier": 7.0}
WIDTH_PER_LAYER = 4  # COIN's shapes are about 4 units wide per layer (10x40)
MIN_WIDTH = 4


def header_bits(spec: ModelSpec, signal, networks: int = 1) -> int:
    """Exact size of header plus CRC for this model: the header's length does not depend
    on the values of its fields, only on the model and the number of networks."""
    coding = bitstream.TensorCoding(0, EntropyParams(Family.UNIFORM, 0, 0))
    tensors = (coding,) * (len(spec.tensor_shapes()) * networks)
    header = bitstream.Header(signal, spec, networks, tensors, psnr=0.0)
    return 8 * (len(bitstream.header_bytes(header)) + bitstream.CRC_BYTES)


def plan(
    base: ModelSpec,
    signal,
    budget_bits: float,
    *,
    max_layers: int,
    bits_per_param: float,
    networks: int = 1,
) -> ModelSpec:
    """The deepest spec (up to max_layers, and the family's own cap) whose `networks` copies
    fit the budget and that is at least WIDTH_PER_LAYER units wide per layer; the widest
    shallow one otherwise."""
    fallback = None
    if base.plan_max_layers is not None:
        max_layers = min(max_layers, base.plan_max_layers)
    for layers in range(max_layers, 0, -1):
        width = _widest(base, signal, layers, budget_bits, bits_per_param, networks)
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
            f"needs about {expected_bits(smallest, signal, bits_per_param, networks):.0f} bits"
        )
    return fallback


def expected_bits(spec: ModelSpec, signal, bits_per_param: float, networks: int = 1) -> float:
    params = spec.num_params() * networks
    return header_bits(spec, signal, networks) + PAYLOAD_SLACK_BITS + bits_per_param * params


def _widest(
    base, signal, layers: int, budget: float, bits_per_param: float, networks: int
) -> int | None:
    def fits(width: int) -> bool:
        spec = base.replace(layers=layers, width=width)
        return expected_bits(spec, signal, bits_per_param, networks) <= budget

    lo, hi = MIN_WIDTH, 4095
    if not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
