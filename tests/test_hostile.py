"""Hostile files (issue 16): each failure class the fuzz campaign found has a test here.

1. corrupt payloads with a valid CRC made constriction raise AssertionError (exit 70);
2. 2-channel images crashed the PNG writer; 3. rates a format cannot hold crashed soundfile;
4. tiny files asked for gigabytes; 5. tiny files asked for hours of work;
6. off-spec files (padding bits, long header, trailing payload) were accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kancoin
from kancoin import adapters, bitstream, budget, decoder, entropy
from kancoin.audio import AudioInfo
from kancoin.bitstream import Header, TensorCoding
from kancoin.cli import main
from kancoin.entropy import EntropyParams, Family
from kancoin.errors import BudgetError, FormatError, UsageError
from kancoin.models import KanSpec, SirenSpec
from kancoin.signals import ImageInfo

ZERO = TensorCoding(0, EntropyParams(Family.UNIFORM, 0, 0))


def with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def zero_file(info, spec, networks: int = 1, psnr=None) -> bytes:
    """A valid file whose tensors are all zero: a few dozen bytes for any network size."""
    tensors = (ZERO,) * (len(spec.tensor_shapes()) * networks)
    return bitstream.write(Header(info, spec, networks, tensors, psnr), b"")


def random_file(info, spec, seed: int = 0, networks: int = 1) -> bytes:
    """A valid file with range-coded random weights."""
    rng = np.random.default_rng(seed)
    counts = [int(np.prod(shape)) for _, shape in spec.tensor_shapes()] * networks
    params = EntropyParams(Family.LAPLACE, 64, 7)
    ints = [rng.integers(-7, 8, count).astype(np.int32) for count in counts]
    payload = entropy.encode([(values, params) for values in ints])
    tensors = tuple(TensorCoding(-48, params) for _ in counts)
    return bitstream.write(Header(info, spec, networks, tensors, None), payload)


def bomb() -> bytes:
    """Issue 16's 65-byte file: SIREN 2x4090 (16.7 M parameters) at 256x256, all zero."""
    spec = SirenSpec(in_features=2, out_features=3, layers=2, width=4090)
    return zero_file(ImageInfo(256, 256, 3), spec)


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    return code, *capsys.readouterr()


# 1. the entropy decoder's AssertionError


def test_every_payload_bit_flip_with_a_forged_crc_is_a_format_error(tiny_inr):
    _header, payload = bitstream.read(tiny_inr)
    start = len(tiny_inr) - 4 - len(payload)
    outcomes = set()
    for bit in range(8 * len(payload)):
        data = bytearray(tiny_inr[:-4])
        data[start + bit // 8] ^= 1 << (bit % 8)
        try:
            decoder.decode(with_crc(bytes(data)))
            outcomes.add("accepted")
        except FormatError as exc:
            outcomes.add("corrupt" if "payload" in str(exc) else str(exc))
    assert outcomes <= {"corrupt", "accepted"}


def test_constriction_assertion_is_mapped():
    # an all-ones payload is invalid for a uniform model over 3 symbols (constriction asserts)
    params = EntropyParams(Family.UNIFORM, 0, 1)
    with pytest.raises(FormatError, match="payload"):
        entropy.decode(b"\xff" * 8, [(5, params)])


def test_cli_maps_a_corrupt_payload_to_exit_4(capsys, tmp_path):
    # a valid container whose payload constriction rejects with an AssertionError (exit 70
    # "internal error" before)
    spec = SirenSpec(in_features=2, out_features=1, layers=1, width=1)
    params = EntropyParams(Family.UNIFORM, 0, 1)
    tensors = tuple(TensorCoding(0, params) for _ in spec.tensor_shapes())
    path = tmp_path / "bad.inr"
    path.write_bytes(bitstream.write(Header(ImageInfo(2, 2, 1), spec, 1, tensors), b"\xff" * 8))
    code, _, err = run_cli(capsys, "decode", path, "-o", tmp_path / "out.png")
    assert code == 4 and "internal error" not in err and err.count("\n") == 1
    assert "payload is corrupt" in err


# 2. two-channel images, and what each image format can hold


def test_two_channel_image_decodes_to_grey_and_alpha(tmp_path):
    spec = SirenSpec(in_features=2, out_features=2, layers=1, width=3)
    data = random_file(ImageInfo(5, 7, 2), spec)
    image = kancoin.decode(data, tmp_path / "la.png")
    assert image.shape == (5, 7, 2)
    from PIL import Image

    with Image.open(tmp_path / "la.png") as written:
        assert written.mode == "LA" and written.size == (7, 5)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp", ".ppm"])
def test_formats_without_two_channels_are_refused_before_work(tmp_path, suffix):
    spec = SirenSpec(in_features=2, out_features=2, layers=1, width=3)
    data = random_file(ImageInfo(5, 7, 2), spec)
    with pytest.raises(UsageError, match="2-channel"):
        kancoin.decode(data, tmp_path / f"out{suffix}", max_work=1)  # before the budget
    assert not list(tmp_path.iterdir())


def test_rgba_to_jpeg_and_oversized_webp_are_refused_before_work(tmp_path):
    rgba = random_file(ImageInfo(4, 4, 4), SirenSpec(2, 4, layers=1, width=2))
    with pytest.raises(UsageError, match="4-channel"):
        kancoin.decode(rgba, tmp_path / "out.jpg")
    rgb = random_file(ImageInfo(4, 4, 3), SirenSpec(2, 3, layers=1, width=2))
    with pytest.raises(UsageError, match="16383"):
        kancoin.decode(rgb, tmp_path / "out.webp", size=(16384, 1))


def test_jpeg_wider_than_libjpeg_holds_is_refused_before_work(tmp_path):
    # found by the fuzz campaign: libjpeg stops at 65500 pixels a side, Pillow raised OSError
    # after the render
    rgb = random_file(ImageInfo(4, 4, 3), SirenSpec(2, 3, layers=1, width=2))
    with pytest.raises(UsageError, match="65500"):
        kancoin.decode(rgb, tmp_path / "out.jpg", size=(65501, 1), max_work=1)
    assert kancoin.decode(rgb, tmp_path / "ok.jpg", size=(65500, 1)).shape == (1, 65500, 3)


def test_side_limits_match_pillow(tmp_path):
    from PIL import Image

    for name, side in adapters.IMAGE_MAX_SIDE.items():
        Image.new("RGB", (side, 1)).save(tmp_path / "probe", format=name)
        with pytest.raises((OSError, ValueError)):
            Image.new("RGB", (side + 1, 1)).save(tmp_path / "probe", format=name)


def test_format_table_matches_pillow(tmp_path):
    from PIL import Image

    for name, held in adapters.IMAGE_CHANNELS.items():
        for channels, mode in ((1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")):
            image = Image.new(mode, (3, 2))
            try:
                image.save(tmp_path / "probe", format=name)
                writable = True
            except (OSError, ValueError, KeyError):
                writable = False
            assert writable == (channels in held), (name, mode)


# 3. audio rates a format cannot hold


@pytest.mark.parametrize("rate", [768_000, 655_351, 65_537])
def test_flac_rates_it_cannot_hold_are_refused_before_work(tmp_path, rate):
    pytest.importorskip("soundfile")
    spec = SirenSpec(in_features=1, out_features=1, layers=1, width=2)
    data = random_file(AudioInfo(rate, 50, 1, 50), spec)
    with pytest.raises(UsageError, match="FLAC cannot hold"):
        kancoin.decode(data, tmp_path / "out.flac", max_work=1)  # refused before the budget
    out = kancoin.decode(data, tmp_path / "out.wav")  # WAV holds any rate
    assert out.shape == (50, 1)


def test_flac_rate_rule_matches_libsndfile(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    from kancoin import audio

    for rate in (1, 44_100, 65_535, 65_536, 65_540, 96_000, 96_001, 655_350, 655_360):
        try:
            audio.check_writable(tmp_path / "x.flac", 1, rate)
            allowed = True
        except UsageError:
            allowed = False
        try:
            soundfile.write(tmp_path / "x.flac", np.zeros((4, 1), np.int16), rate, format="FLAC")
            writable = True
        except RuntimeError:
            writable = False
        assert allowed == writable, rate


def test_cli_flac_rate_is_a_usage_error(capsys, tmp_path):
    pytest.importorskip("soundfile")
    spec = SirenSpec(in_features=1, out_features=1, layers=1, width=2)
    path = tmp_path / "clip.inr"
    path.write_bytes(random_file(AudioInfo(768_000, 40, 1, 40), spec))
    code, _, err = run_cli(capsys, "decode", path, "-o", tmp_path / "clip.flac")
    assert code == 2 and "FLAC cannot hold" in err


# 4. memory


def test_kan_basis_tensor_is_rendered_in_chunks_sized_by_memory():
    spec = KanSpec(2, 3, layers=1, width=4095, grid_size=255, input_grid_size=1, spline_order=7)
    assert spec.num_params() <= bitstream.MAX_TOTAL_PARAMS
    chunk = budget.chunk_for_spec(spec)
    assert chunk * spec.render_bytes_per_sample() <= budget.RENDER_MEMORY
    cost = budget.estimate(spec_header(spec, 64, 64), 64 * 64, 3, writer_bytes=7, file_bytes=100)
    assert cost.memory < 512 << 20


def spec_header(spec, height, width):
    tensors = (ZERO,) * len(spec.tensor_shapes())
    return Header(ImageInfo(height, width, spec.out_features), spec, 1, tensors, None)


ADDRESS_LIMIT = """
import resource, sys
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (3 << 30), size + (3 << 30)))
"""


def decode_in_subprocess(tmp_path, data: bytes, **options) -> subprocess.CompletedProcess:
    """Decode in a child whose address space may grow by 3 GiB at most (an old decoder's
    17.6 GB request fails there instead of swapping the machine)."""
    path = tmp_path / "hostile.inr"
    path.write_bytes(data)
    script = (
        "import torch, kancoin\n"
        "torch.set_num_threads(1)\n"
        + ADDRESS_LIMIT
        + f"kancoin.decode({str(path)!r}, **{options!r})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env
    )


def test_kan_with_a_huge_basis_decodes_in_bounded_memory(tmp_path):
    # issue 16: a 64x64 image, KAN 1x4095 at grid 255 and order 7, asked for one 17.6 GB
    # tensor; chunks sized by memory keep the peak far below (here under a 3 GiB cap)
    spec = KanSpec(2, 3, layers=1, width=4095, grid_size=255, input_grid_size=1, spline_order=7)
    result = decode_in_subprocess(tmp_path, zero_file(ImageInfo(64, 64, 3), spec))
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) < 2 << 20  # peak RSS under 2 GiB (KiB units)


def test_huge_outputs_are_refused_by_memory_before_allocation():
    siren = SirenSpec(2, 4, layers=1, width=1)
    with pytest.raises(BudgetError, match="memory"):  # RGBA 65535x1365, +3.4 GB before
        kancoin.decode(zero_file(ImageInfo(1365, 65535, 4), siren))
    clip = SirenSpec(1, 8, layers=1, width=1)
    frames = 89_478_485
    with pytest.raises(BudgetError, match="memory"):  # 8 channels, 2.7 GiB at once before
        kancoin.decode(zero_file(AudioInfo(44_100, frames, 8, frames), clip))


def test_memory_budget_can_be_raised(tmp_path):
    siren = SirenSpec(2, 3, layers=1, width=1)
    data = zero_file(ImageInfo(512, 512, 3), siren)
    with pytest.raises(BudgetError, match="--max-memory"):
        kancoin.decode(data, max_memory=1 << 20)
    assert kancoin.decode(data, max_memory=64 << 20).shape == (512, 512, 3)


def test_audio_is_rendered_without_full_length_temporaries():
    # the chunked renderer finds each segment's first frame without a float64 array of
    # every output time; it must agree with searchsorted over those times
    rng = np.random.default_rng(0)
    for _ in range(300):
        count = int(rng.integers(1, 5000))
        step = float(rng.choice([1.0, 0.5, 2.0, 44100 / 48000, 3.7, 768000 / 7]))
        bound = int(rng.integers(0, 20000))
        times = np.arange(count, dtype=np.float64) * step
        assert adapters._first_at(bound, step, count) == int(np.searchsorted(times, bound))


# 5. time


def test_parameter_bomb_is_refused_before_any_work():
    data = bomb()
    assert len(data) == 65
    with pytest.raises(BudgetError, match=r"multiply-adds.*--max-work"):
        kancoin.decode(data)


REFUSE_WITHOUT_TORCH = """
import sys
from kancoin.launch import main
code = main(["decode", sys.argv[1], "-o", sys.argv[2]])
loaded = [name for name in ("torch", "kancoin.cli", "kancoin.fit") if name in sys.modules]
print(code, loaded)
"""


def test_cli_refuses_the_bomb_without_importing_torch(tmp_path):
    """`kancoin decode` reads and prices a file before torch loads (over a second of the
    refusal's time otherwise): the 65-byte bomb is refused by the budget alone."""
    path = tmp_path / "bomb.inr"
    path.write_bytes(bomb())
    done = subprocess.run(
        [sys.executable, "-c", REFUSE_WITHOUT_TORCH, str(path), str(tmp_path / "b.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "5 []", done.stdout + done.stderr
    assert "multiply-adds" in done.stderr and done.stderr.count("\n") == 1


def test_cli_budget_error_and_raised_budget(capsys, tmp_path):
    path = tmp_path / "bomb.inr"
    path.write_bytes(bomb())
    code, _, err = run_cli(capsys, "decode", path, "-o", tmp_path / "bomb.png")
    assert code == 5 and "1.14e+12 multiply-adds" in err and not (tmp_path / "bomb.png").exists()
    # a smaller file of the same kind: refused at a low budget, decoded when it is raised
    small = tmp_path / "small.inr"
    small.write_bytes(zero_file(ImageInfo(32, 32, 3), SirenSpec(2, 3, layers=2, width=64)))
    code, _, err = run_cli(capsys, "decode", small, "-o", tmp_path / "s.png", "--max-work", "1e6")
    assert code == 5 and "--max-work" in err
    code, out, err = run_cli(capsys, "decode", small, "-o", tmp_path / "s.png", "--max-work", "1e9")
    assert code == 0 and "32x32" in out, err


def test_many_networks_count_against_the_budget():
    # audio: per-network costs (building each network) count, not only multiply-adds
    spec = SirenSpec(1, 1, layers=1, width=1)
    header = Header(AudioInfo(8000, 2000, 1, 1), spec, 2000, (ZERO,) * 8000, None)
    cost = budget.estimate(header, 2000, 1, writer_bytes=0, file_bytes=0)
    assert cost.work >= 2000 * budget.WORK_PER_NETWORK


# 6. off-spec files


def small_header() -> Header:
    spec = SirenSpec(2, 3, layers=1, width=2)  # 402 header bits: 6 padding bits
    return Header(ImageInfo(4, 4, 3), spec, 1, (ZERO,) * 4, None)


def test_padding_bits_must_be_zero():
    data = bitstream.write(small_header(), b"")
    body = bytearray(data[:-4])
    assert len(body) == 51
    body[-1] |= 1  # the last padding bit
    with pytest.raises(FormatError, match="padding"):
        bitstream.read(with_crc(bytes(body)))


def test_header_length_must_be_exact():
    data = bitstream.write(small_header(), b"")
    body = bytearray(data[:-4]) + b"junk"  # junk between header and payload
    body[6:8] = (len(body)).to_bytes(2, "big")
    with pytest.raises(FormatError, match="header length"):
        bitstream.read(with_crc(bytes(body)))


def test_trailing_payload_words_are_refused(tiny_inr):
    header, payload = bitstream.read(tiny_inr)
    for extra in (b"\0\0\0\0", b"\xff\xff\xff\xff"):
        data = bitstream.write(header, payload + extra)  # payload_words consistent
        _header_again, _ = bitstream.read(data)  # the container is fine...
        with pytest.raises(FormatError, match="not canonical"):
            kancoin.decode(data)  # ...the payload is not what the encoder writes


def test_a_zero_model_file_with_a_payload_is_refused():
    data = bitstream.write(small_header(), b"\0\0\0\0")
    with pytest.raises(FormatError, match="not canonical"):
        kancoin.decode(data)


@given(
    tensors=st.lists(
        st.tuples(
            st.integers(0, 300),
            st.sampled_from(list(Family)),
            st.integers(40, 90),
            st.sampled_from([0, 1, 3, 100, 1 << 15]),
            st.integers(0, 2**32 - 1),
        ),
        min_size=1,
        max_size=5,
    )
)
@settings(max_examples=60, deadline=None)
def test_the_strict_decoder_accepts_everything_the_encoder_writes(tensors):
    coded = []
    for count, family, scale, max_abs, seed in tensors:
        rng = np.random.default_rng(seed)
        params = EntropyParams(family, scale, max_abs)
        coded.append((rng.integers(-max_abs, max_abs + 1, count).astype(np.int32), params))
    payload = entropy.encode(coded)
    decoded = entropy.decode(payload, [(ints.size, params) for ints, params in coded])
    for (ints, _), back in zip(coded, decoded, strict=True):
        np.testing.assert_array_equal(ints, back)


# files written by kancoin 0.2.0 (before the strict reader) decode as they did then

GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.mark.parametrize("name", ["siren", "siren-bits", "rgba", "kan", "fourier", "audio"])
def test_files_written_by_0_2_0_decode_as_before(name):
    expected = np.load(GOLDEN / "decoded-by-0.2.0.npz")[name]
    decoded = kancoin.decode(GOLDEN / f"{name}.inr")
    from kancoin.audio import to_int16
    from kancoin.signals import to_uint8

    written = to_int16(decoded) if name == "audio" else to_uint8(decoded)
    assert written.shape == expected.shape
    # identical with the native sine (how they were decoded); torch's sine may differ by a
    # rounding step somewhere
    difference = np.abs(written.astype(np.int32) - expected.astype(np.int32))
    assert difference.max() <= 1 and np.mean(difference > 0) < 0.01


def test_the_encoders_closed_loop_is_not_bounded_by_the_decode_budget(monkeypatch):
    # the encoder decodes what it has just built: a big encode must not fail at its end
    seen = []
    monkeypatch.setattr(budget, "check", lambda cost, limits: seen.append(limits))
    image = np.random.default_rng(0).random((6, 6, 3)).astype(np.float32)
    kancoin.encode(image, bpp=None, bits=8, layers=1, width=2, steps=2, preset="fast")
    assert seen and all(limits.max_work == float("inf") for limits in seen)
