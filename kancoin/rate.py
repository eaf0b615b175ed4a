"""From a rate target to a network size: the header's exact cost, then the family sizes
itself for the rest (ModelSpec.size_for)."""

from __future__ import annotations

from kancoin import bitstream
from kancoin.entropy import EntropyParams, Family
from kancoin.errors import RateError
from kancoin.models import ModelSpec
from kancoin.models.base import SizeError
from kancoin.prior import PriorRef

PAYLOAD_SLACK_BITS = 64  # range coder flush and word rounding


def header_bits(spec: ModelSpec, signal, networks: int = 1, prior: PriorRef | None = None) -> int:
    """Exact size of header plus CRC for this model: the header's length does not depend
    on the values of its fields, only on the model, the number of networks and the prior."""
    coding = bitstream.TensorCoding(0, EntropyParams(Family.UNIFORM, 0, 0))
    tensors = (coding,) * (len(bitstream.coded_shapes(spec, prior)) * networks)
    header = bitstream.Header(signal, spec, networks, tensors, psnr=0.0, prior=prior)
    return 8 * (len(bitstream.header_bytes(header)) + bitstream.CRC_BYTES)


def plan(
    base: ModelSpec,
    signal,
    budget_bits: float,
    *,
    max_layers: int,
    bits_per_param: float | None = None,
    networks: int = 1,
) -> ModelSpec:
    """`base` sized by its family for `budget_bits` (bits_per_param: the family's own unless
    given); RateError when even its smallest shape does not fit."""
    try:
        return base.size_for(
            budget_bits,
            overhead_bits=lambda spec: header_bits(spec, signal, networks) + PAYLOAD_SLACK_BITS,
            bits_per_param=base.bits_per_param if bits_per_param is None else bits_per_param,
            max_layers=max_layers,
            networks=networks,
        )
    except SizeError as exc:
        raise RateError(f"a budget of {budget_bits:.0f} bits is too small: {exc}") from None


def expected_bits(
    spec: ModelSpec,
    signal,
    bits_per_param: float | None = None,
    networks: int = 1,
    prior: PriorRef | None = None,
) -> float:
    """What the plan expects `networks` copies of `spec` to cost, header included; with a
    prior, only the layers it does not supply are coded."""
    per_param = spec.bits_per_param if bits_per_param is None else bits_per_param
    params = coded_params(spec, prior) * networks
    return header_bits(spec, signal, networks, prior) + PAYLOAD_SLACK_BITS + per_param * params


def coded_params(spec: ModelSpec, prior: PriorRef | None = None) -> int:
    """Parameters one network codes: all of the spec's, less a prior's frozen layers."""
    total = 0
    for _, shape in bitstream.coded_shapes(spec, prior):
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total
