"""The .inr container: a declarative header, a range-coded payload and a CRC32.

Layout and limits are specified in docs/FORMAT.md; this module is their single source.
Parsing is defensive: every count is checked against limits and against the file's real
length before anything is allocated, and every failure is a FormatError with one line.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import bitstring

from kancoin.audio import AudioInfo
from kancoin.entropy import SCALE_INDEX_MAX, EntropyParams, Family
from kancoin.errors import FormatError, LimitError
from kancoin.models import MODEL_SPECS, ModelSpec
from kancoin.prior import ID_BYTES, PriorRef
from kancoin.quant import MAX_ABS_INT, STEP_INDEX_MAX, STEP_INDEX_MIN
from kancoin.signals import ImageInfo

MAGIC = b"KINR"
VERSION = 1  # a file without a prior: written as version 1, byte for byte as before
PRIOR_VERSION = 2  # version 1 plus the prior block (docs/FORMAT.md, "Version 2")
VERSIONS = (VERSION, PRIOR_VERSION)
FREEZE_FORMAT = "uint:6"
MAX_TOTAL_PARAMS = 1 << 24  # across all networks of one file
CRC_BYTES = 4


SIGNAL_INFOS: dict[int, type] = {ImageInfo.kind: ImageInfo, AudioInfo.kind: AudioInfo}


@dataclass(frozen=True)
class TensorCoding:
    """How one tensor is quantized (step index) and entropy-coded (family, scale, alphabet)."""

    step_index: int
    entropy: EntropyParams


TENSOR_FIELDS = (
    ("step_index", "int:11", STEP_INDEX_MIN, STEP_INDEX_MAX),
    ("family", "uint:2", 0, max(Family)),
    ("scale_index", "uint:8", 0, SCALE_INDEX_MAX),
    ("max_abs", "uint:20", 0, MAX_ABS_INT),
)


@dataclass(frozen=True)
class Header:
    signal: object  # ImageInfo, AudioInfo or another registered signal info
    spec: ModelSpec
    networks: int
    tensors: tuple[TensorCoding, ...]
    psnr: float | None = None
    payload_words: int = 0
    prior: PriorRef | None = None  # version 2: the layers a cohort prior supplies

    @property
    def version(self) -> int:
        return VERSION if self.prior is None else PRIOR_VERSION

    def coded_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Names and shapes of one network's coded tensors: the model's, less the layers
        the prior supplies."""
        return coded_shapes(self.spec, self.prior)

    def tensor_counts(self) -> list[int]:
        """Element count of each coded tensor, all networks in order."""
        per_network = [_prod(shape) for _, shape in self.coded_shapes()]
        return per_network * self.networks


def coded_shapes(spec: ModelSpec, prior: PriorRef | None) -> list[tuple[str, tuple[int, ...]]]:
    """The spec's tensors a file codes when `prior` supplies its first layers."""
    shapes = spec.tensor_shapes()
    return shapes if prior is None else shapes[2 * prior.freeze :]


def _check_prior(spec: ModelSpec, prior: PriorRef) -> None:
    if not spec.takes_prior():
        raise ValueError(f"{spec.name} networks take no prior")
    if not 1 <= prior.freeze <= spec.layers:
        raise ValueError(f"freeze={prior.freeze} outside [1, {spec.layers}]")
    if len(prior.digest) != ID_BYTES:
        raise ValueError("prior identity must be 8 bytes")


def _prod(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def _pack_fields(stream: bitstring.BitArray, fields, values: dict) -> None:
    for f in fields:
        value = values[f.name]
        if not f.low <= value <= f.high:
            raise ValueError(f"{f.name}={value} outside [{f.low}, {f.high}]")
        stream.append(bitstring.pack(f.fmt, value))


def _read_fields(stream: bitstring.Reader, fields, what: str) -> dict:
    values = {}
    for f in fields:
        value = stream.read_value(f.fmt)
        if not (f.low <= value <= f.high):  # also rejects NaN floats
            raise FormatError(f"{what} field {f.name}={value} is outside [{f.low:g}, {f.high:g}]")
        values[f.name] = value
    return values


def header_bytes(header: Header) -> bytes:
    """Serialise everything before the payload (byte-aligned)."""
    stream = bitstring.BitArray()
    stream.append(
        bitstring.pack("bytes:4, uint:8, uint:8", MAGIC, header.version, header.signal.kind)
    )
    length_pos = len(stream)
    stream.append(bitstring.pack("uint:16", 0))  # header length, patched below
    _pack_fields(stream, header.signal.header_fields, vars(header.signal))
    stream.append(bitstring.pack("uint:8", header.spec.model_id))
    _pack_fields(stream, header.spec.header_fields, header.spec.header_values())
    if header.prior is not None:
        _check_prior(header.spec, header.prior)
        stream.append(bitstring.Bits.from_bytes(header.prior.digest))
        stream.append(bitstring.pack(FREEZE_FORMAT, header.prior.freeze))
    stream.append(bitstring.pack("uint:16", header.networks))
    if len(header.tensors) != len(header.tensor_counts()):
        raise ValueError("tensor coding count does not match the model")
    for coding in header.tensors:
        values = {
            "step_index": coding.step_index,
            "family": int(coding.entropy.family),
            "scale_index": coding.entropy.scale_index,
            "max_abs": coding.entropy.max_abs,
        }
        for name, fmt, low, high in TENSOR_FIELDS:
            if not low <= values[name] <= high:
                raise ValueError(f"tensor {name}={values[name]} outside [{low}, {high}]")
            stream.append(bitstring.pack(fmt, values[name]))
    if header.psnr is None:
        stream.append(bitstring.pack("uint:1", 0))
    else:
        centi = round(min(max(header.psnr, 0.0), 655.35) * 100)
        stream.append(bitstring.pack("uint:1, uint:16", 1, centi))
    stream.append(bitstring.pack("uint:32", header.payload_words))
    stream.append(bitstring.Bits.from_zeros(-len(stream) % 8))  # pad to a byte boundary
    stream.overwrite(length_pos, bitstring.pack("uint:16", len(stream) // 8))
    return stream.tobytes()


def write(header: Header, payload: bytes) -> bytes:
    """A complete .inr file: header, payload words, CRC32 of both."""
    if len(payload) % 4:
        raise ValueError("payload must be whole 32-bit words")
    header = replace(header, payload_words=len(payload) // 4)
    body = header_bytes(header) + payload
    return body + zlib.crc32(body).to_bytes(CRC_BYTES, "little")


def read(data: bytes) -> tuple[Header, bytes]:
    """Parse and validate a .inr file; returns the header and the raw payload bytes."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise FormatError("not a kancoin .inr file (bad magic)")
    if data[4] not in VERSIONS:
        readable = " and ".join(map(str, VERSIONS))
        raise FormatError(f"unsupported .inr version {data[4]} (this kancoin reads {readable})")
    if len(data) < 8 + CRC_BYTES:
        raise FormatError("file is truncated")
    body, stored_crc = data[:-CRC_BYTES], int.from_bytes(data[-CRC_BYTES:], "little")
    if zlib.crc32(body) != stored_crc:
        raise FormatError("file is corrupt or truncated (CRC mismatch)")
    try:
        return _parse(body)
    except (bitstring.ReadError, ValueError) as exc:
        raise FormatError(f"malformed header ({exc})") from None


def _parse(body: bytes) -> tuple[Header, bytes]:
    version = body[4]
    stream = bitstring.Reader(bitstring.Bits.from_bytes(body[:8]), pos=40)
    kind = stream.read_value("uint:8")
    if kind not in SIGNAL_INFOS:
        raise FormatError(f"unknown signal kind {kind}")
    length = stream.read_value("uint:16")
    if not 8 <= length <= len(body):
        raise FormatError(f"header length {length} does not fit a {len(body)}-byte body")
    stream = bitstring.Reader(bitstring.Bits.from_bytes(body[:length]), pos=64)  # header only
    info_cls = SIGNAL_INFOS[kind]
    signal = info_cls(**_read_fields(stream, info_cls.header_fields, "signal"))
    model_id = stream.read_value("uint:8")
    if model_id not in MODEL_SPECS:
        raise FormatError(f"unknown model id {model_id}")
    spec_cls = MODEL_SPECS[model_id]
    values = _read_fields(stream, spec_cls.header_fields, "model")
    spec = spec_cls.from_header(
        in_features=signal.coord_dims,
        out_features=signal.channels,
        values=values,
    )
    prior = None
    if version == PRIOR_VERSION:
        if not spec.takes_prior():
            raise FormatError(f"a {spec.name} network takes no prior (version 2 file)")
        digest = stream.read_value(f"bytes:{ID_BYTES}")
        freeze = stream.read_value(FREEZE_FORMAT)
        if not 1 <= freeze <= spec.layers:
            raise FormatError(f"prior field freeze={freeze} is outside [1, {spec.layers}]")
        prior = PriorRef(digest, freeze)
    networks = stream.read_value("uint:16")
    if networks < 1:
        raise FormatError("file declares no network")
    if networks != signal.networks:
        raise FormatError(f"file declares {networks} networks; its signal needs {signal.networks}")
    total = spec.num_params() * networks
    if total > MAX_TOTAL_PARAMS:
        raise LimitError(f"file declares {total} parameters, above the limit {MAX_TOTAL_PARAMS}")
    n_tensors = len(coded_shapes(spec, prior)) * networks
    tensor_bits = sum(int(fmt.split(":")[1]) for _, fmt, _, _ in TENSOR_FIELDS)
    if n_tensors * tensor_bits > stream.remaining:
        raise FormatError("header is truncated (tensor table)")
    tensors = []
    for _ in range(n_tensors):
        raw = {}
        for name, fmt, low, high in TENSOR_FIELDS:
            value = stream.read_value(fmt)
            if not low <= value <= high:
                raise FormatError(f"tensor field {name}={value} is outside [{low}, {high}]")
            raw[name] = value
        entropy = EntropyParams(Family(raw["family"]), raw["scale_index"], raw["max_abs"])
        tensors.append(TensorCoding(raw["step_index"], entropy))
    psnr = stream.read_value("uint:16") / 100 if stream.read_value("uint:1") else None
    payload_words = stream.read_value("uint:32")
    # strict: the header ends in fewer than 8 padding bits, all zero (docs/FORMAT.md)
    if stream.remaining >= 8:
        raise FormatError(
            f"header length {length} is longer than its {length - stream.remaining // 8} "
            "bytes of fields"
        )
    if stream.remaining and stream.read_value(f"uint:{stream.remaining}") != 0:
        raise FormatError("header padding bits are not zero")
    if length + 4 * payload_words != len(body):
        raise FormatError(
            f"payload of {payload_words} words does not match the file length {len(body) + 4}"
        )
    header = Header(signal, spec, networks, tuple(tensors), psnr, payload_words, prior)
    return header, body[length:]
