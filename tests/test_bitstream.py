import contextlib
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kancoin import bitstream
from kancoin.bitstream import Header, TensorCoding
from kancoin.entropy import EntropyParams, Family
from kancoin.errors import FormatError, LimitError
from kancoin.models import SirenSpec
from kancoin.signals import ImageInfo


def with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


codings = st.builds(
    TensorCoding,
    step_index=st.integers(-640, 63),
    entropy=st.builds(
        EntropyParams,
        family=st.sampled_from(list(Family)),
        scale_index=st.integers(0, 255),
        max_abs=st.integers(0, (1 << 20) - 1),
    ),
)


@st.composite
def headers(draw):
    spec = SirenSpec(
        in_features=2,
        out_features=draw(st.integers(1, 4)),
        layers=draw(st.integers(1, 6)),
        width=draw(st.integers(1, 40)),
        w0_first=draw(st.sampled_from([30.0, 3000.0, 0.5])),
        w0=draw(st.sampled_from([30.0, 1.0])),
    )
    info = ImageInfo(
        height=draw(st.integers(1, 65535)),
        width=draw(st.integers(1, 65535)),
        channels=spec.out_features,
    )
    tensors = tuple(draw(codings) for _ in spec.tensor_shapes())
    psnr = draw(st.none() | st.floats(0, 99, allow_nan=False).map(lambda v: round(v, 2)))
    return Header(info, spec, 1, tensors, psnr)


@given(header=headers(), words=st.integers(0, 6))
@settings(max_examples=80, deadline=None)
def test_header_round_trip(header, words):
    payload = bytes(range(4 * words))
    data = bitstream.write(header, payload)
    parsed, parsed_payload = bitstream.read(data)
    assert parsed_payload == payload
    assert parsed.signal == header.signal
    assert parsed.spec == header.spec
    assert parsed.tensors == header.tensors
    assert parsed.psnr == header.psnr
    assert len(data) == len(bitstream.header_bytes(parsed)) + len(payload) + 4


def test_every_truncation_is_rejected(tiny_inr):
    for cut in range(len(tiny_inr)):
        with pytest.raises(FormatError):
            bitstream.read(tiny_inr[:cut])


@given(position=st.integers(0, 10_000), bit=st.integers(0, 7))
@settings(max_examples=200, deadline=None)
def test_any_bit_flip_is_rejected(tiny_inr, position, bit):
    data = bytearray(tiny_inr)
    data[position % len(data)] ^= 1 << bit
    with pytest.raises(FormatError):
        bitstream.read(bytes(data))


@given(garbage=st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_random_bytes_never_crash(garbage):
    for data in (garbage, b"KINR\x01" + garbage, with_crc(b"KINR\x01" + garbage)):
        with contextlib.suppress(FormatError):
            bitstream.read(data)


def test_bad_magic_and_version(tiny_inr):
    with pytest.raises(FormatError, match="magic"):
        bitstream.read(b"PNG!" + tiny_inr[4:])
    with pytest.raises(FormatError, match="version 9"):
        bitstream.read(tiny_inr[:4] + b"\x09" + tiny_inr[5:])


def _header(layers=2, width=8, height=16, img_width=16, tensors=None):
    spec = SirenSpec(in_features=2, out_features=3, layers=layers, width=width)
    coding = TensorCoding(0, EntropyParams(Family.UNIFORM, 0, 0))
    tensors = tensors or tuple(coding for _ in spec.tensor_shapes())
    return Header(ImageInfo(height, img_width, 3), spec, 1, tensors, None)


def test_parameter_bomb_is_refused_before_allocation():
    # a valid CRC over a header that declares 63 layers of 4095 units (~1e9 parameters)
    huge = SirenSpec(in_features=2, out_features=3, layers=63, width=4095)
    small = _header()
    body = bytearray(bitstream.header_bytes(small))
    # patch the model fields: rebuild the header bytes with the huge spec but few tensors
    header = bitstream.header_bytes(
        Header(small.signal, huge, 1, tuple([small.tensors[0]] * len(huge.tensor_shapes())))
    )
    assert len(header) > len(body)
    with pytest.raises(LimitError, match="parameters"):
        bitstream.read(with_crc(header))


def test_payload_length_must_match_file(tiny_inr):
    bitstream.read(tiny_inr)  # valid as written
    body = tiny_inr[:-4]
    with pytest.raises(FormatError, match="payload"):
        bitstream.read(with_crc(body + b"\0\0\0\0"))
    with pytest.raises(FormatError):
        bitstream.read(with_crc(body[:-4]))


def test_unknown_model_and_signal_kind_are_refused(tiny_inr):
    body = bytearray(tiny_inr[:-4])
    kind_changed = bytes(body[:5]) + b"\x09" + bytes(body[6:])
    with pytest.raises(FormatError, match="signal kind 9"):
        bitstream.read(with_crc(kind_changed))
    # the model id sits right after the 35 bits of image fields, at bit 64 + 35
    bits = np.unpackbits(np.frombuffer(bytes(body), np.uint8))
    bits[99:107] = np.unpackbits(np.array([200], np.uint8))
    with pytest.raises(FormatError, match="model id 200"):
        bitstream.read(with_crc(np.packbits(bits).tobytes()))


def test_writer_refuses_out_of_range_fields():
    with pytest.raises(ValueError):
        bitstream.write(_header(height=70000), b"")
    with pytest.raises(ValueError, match="tensor coding count"):
        bitstream.write(
            _header(tensors=(TensorCoding(0, EntropyParams(Family.UNIFORM, 0, 0)),)), b""
        )
