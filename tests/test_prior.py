"""Cohort priors (issue 15): the .kprior format, version 2 .inr files that name a prior,
encoding with frozen layers, finding a prior at decode time, and the CLI."""

from __future__ import annotations

import contextlib
import hashlib
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kancoin import bitstream, decoder, encoder, rate
from kancoin import prior as priors
from kancoin.cli import main
from kancoin.errors import FormatError, KancoinError, PriorError, UsageError
from kancoin.fit import cohort
from kancoin.fit.fast_step import SirenFastStep
from kancoin.models import SirenSpec
from kancoin.signals import ImageInfo
from tests.conftest import smooth_image

SPEC = SirenSpec(in_features=2, out_features=3, layers=4, width=12)


def make_prior(seed: int = 0, stored: int = 3, dtype: int = 2, name: str = "t") -> bytes:
    torch.manual_seed(seed)
    model = SPEC.build()
    tensors = [t.detach().numpy() for t in model.all_tensors()[: 2 * stored]]
    members = [hashlib.sha256(b"member%d" % i).digest() for i in range(2)]
    return priors.to_bytes(SPEC, tensors, members=members, name=name, dtype=dtype)


def resign(body: bytes) -> bytes:
    """A file with this body and a matching SHA-256 trailer: the checks after it."""
    return body + hashlib.sha256(body).digest()


@pytest.fixture
def prior_dir(tmp_path, monkeypatch):
    """An empty search path with one prior in it (t.kprior), and no bundled priors."""
    directory = tmp_path / "priors"
    directory.mkdir()
    (directory / "t.kprior").write_bytes(make_prior())
    monkeypatch.setenv(priors.ENV_PATH, str(directory))
    monkeypatch.setattr(priors, "BUNDLED", tmp_path / "none")
    return directory


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A small image coded with prior t (seed 0), frozen at 2 layers."""
    directory = tmp_path_factory.mktemp("prior")
    path = directory / "t.kprior"
    path.write_bytes(make_prior())
    image = smooth_image(24, 32)
    result = encoder.encode(image, bpp=4.0, steps=30, prior=str(path), freeze=2, threads=1)
    return path, image, result


# the .kprior format


def test_prior_round_trip_and_stable_rank_rule():
    data = make_prior(dtype=2)
    prior = priors.from_bytes(data)
    assert prior.spec == SPEC and prior.stored == 3 and prior.name == "t"
    assert prior.sha256 == hashlib.sha256(data[:-32]).digest() and prior.id == prior.sha256[:8]
    ranks = prior.stable_ranks()
    assert len(ranks) == 3
    for layer, value in enumerate(ranks):
        weight = prior.tensors[2 * layer].astype(np.float64)
        singular = np.linalg.svd(weight, compute_uv=False)
        assert value == pytest.approx((singular**2).sum() / singular[0] ** 2)
    assert prior.rule_freeze() == 1 + int(np.argmax(ranks))


def test_float16_priors_hold_half_precision_values():
    prior = priors.from_bytes(make_prior(dtype=1))
    torch.manual_seed(0)
    reference = SPEC.build().all_tensors()[0].detach().numpy()
    np.testing.assert_array_equal(prior.tensors[0], reference.astype(np.float16))


def test_every_truncation_is_one_prior_error():
    data = make_prior()
    for length in range(len(data)):
        with pytest.raises(PriorError):
            priors.from_bytes(data[:length])


def test_bit_flips_are_caught_by_the_digest():
    data = bytearray(make_prior())
    for position in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[position] ^= 1 << (position % 8)
        with pytest.raises(PriorError):
            priors.from_bytes(bytes(flipped))


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (4, "B", 2, "version"),
        (5, "B", 2, "model id"),  # KAN: not a family priors support
        (6, "B", 0, "in_features"),
        (7, "B", 9, "out_features"),
        (8, "B", 0, "layers"),
        (9, ">H", 5000, "width"),
        (11, ">f", float("nan"), "w0_first"),
        (15, ">f", 1e9, "w0"),
        (19, "B", 6, "stored"),
        (20, "B", 3, "dtype"),
        (21, ">H", 5000, "members"),
    ],
)
def test_field_bounds(offset, fmt, value, message):
    body = bytearray(make_prior()[:-32])
    struct.pack_into(fmt, body, offset, value)
    with pytest.raises(PriorError, match=message):
        priors.from_bytes(resign(bytes(body)))


def test_sizes_are_checked_before_allocation():
    body = bytearray(make_prior()[:-32])
    struct.pack_into(">H", body, 9, 4095)  # width 4095: 4 x 16.8 M parameters declared
    with pytest.raises(PriorError, match="parameters"):
        priors.from_bytes(resign(bytes(body)))
    body = bytearray(make_prior()[:-32])
    struct.pack_into("B", body, 19, 2)  # fewer stored layers than the bytes hold
    with pytest.raises(PriorError, match="bytes of fields"):
        priors.from_bytes(resign(bytes(body)))


def test_non_finite_weights_are_refused():
    body = bytearray(make_prior(dtype=2)[:-32])
    start = priors._FIXED.size + 1 + 64  # name "t", two member digests
    struct.pack_into("<f", body, start, float("inf"))
    with pytest.raises(PriorError, match="non-finite"):
        priors.from_bytes(resign(bytes(body)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_one_prior_error(data):
    with pytest.raises(PriorError):
        priors.from_bytes(b"KPRI\x01" + data)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_resigned_mutations_parse_or_fail_cleanly(position, value):
    body = bytearray(make_prior()[:-32])
    body[position % len(body)] = value
    try:
        prior = priors.from_bytes(resign(bytes(body)))
    except PriorError:
        return
    assert all(np.isfinite(t).all() for t in prior.tensors)


# version 2 .inr files


def test_files_without_a_prior_stay_version_1(tiny_inr):
    assert tiny_inr[4] == 1 and bitstream.read(tiny_inr)[0].prior is None


def test_a_prior_file_is_version_2_and_codes_only_the_rest(encoded):
    path, _, result = encoded
    prior = priors.load(path)
    header = result.header
    assert result.data[4] == 2
    assert header.prior == priors.PriorRef(prior.id, 2)
    assert header.coded_shapes() == header.spec.tensor_shapes()[4:]
    assert len(header.tensors) == len(header.spec.tensor_shapes()) - 4
    assert 8 * len(result.data) <= 4.0 * 24 * 32
    summary = result.summary()
    assert summary["prior"] == prior.id.hex() and summary["freeze"] == 2
    coded = sum(header.tensor_counts())
    assert summary["mean_bits_per_param"] == round(32 * header.payload_words / coded, 3)


def test_frozen_layers_are_the_priors_and_decode_matches(encoded):
    path, image, result = encoded
    decoded = decoder.decode(result.data, prior=str(path))
    mse = float(np.mean((np.round(decoded * 255) / 255 - image) ** 2))
    assert result.psnr == pytest.approx(-10 * np.log10(mse), abs=0.01)
    header, payload = bitstream.read(result.data)
    model = decoder.load_models(header, payload, torch.device("cpu"), str(path))[0]
    prior = priors.load(path)
    for tensor, values in zip(model.all_tensors()[:4], prior.tensors, strict=False):
        np.testing.assert_array_equal(tensor.detach().numpy(), values)


def test_decoding_without_the_prior_is_one_clear_error(encoded, tmp_path, monkeypatch, capsys):
    _, _, result = encoded
    monkeypatch.setenv(priors.ENV_PATH, str(tmp_path))
    monkeypatch.setattr(priors, "BUNDLED", tmp_path / "none")
    with pytest.raises(PriorError, match="needs prior"):
        decoder.decode(result.data)
    inr = tmp_path / "x.inr"
    inr.write_bytes(result.data)
    assert main(["decode", str(inr), "-o", str(tmp_path / "x.png")]) == 9
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs prior" in err


def test_decoding_with_another_prior_is_one_clear_error(encoded, tmp_path, capsys):
    _, _, result = encoded
    other = tmp_path / "other.kprior"
    other.write_bytes(make_prior(seed=1, name="other"))
    with pytest.raises(PriorError, match="not other"):
        decoder.decode(result.data, prior=str(other))
    inr = tmp_path / "x.inr"
    inr.write_bytes(result.data)
    code = main(["decode", str(inr), "--prior", str(other), "-o", str(tmp_path / "x.png")])
    assert code == 9 and capsys.readouterr().err.count("\n") == 1


def test_the_search_path_finds_the_prior_by_identity(encoded, tmp_path, monkeypatch):
    path, _, result = encoded
    monkeypatch.setenv(priors.ENV_PATH, str(path.parent))
    assert decoder.decode(result.data).shape == (24, 32, 3)


def test_version_2_truncations_and_bad_freeze_are_format_errors(encoded, monkeypatch):
    _, _, result = encoded
    for length in range(0, len(result.data), 3):
        with pytest.raises(FormatError):
            bitstream.read(result.data[:length])
    header = result.header
    for freeze in (0, header.spec.layers + 1):
        monkeypatch.setattr(bitstream, "_check_prior", lambda spec, prior: None)
        bad = bitstream.replace(header, prior=priors.PriorRef(header.prior.digest, freeze))
        coded = len(bitstream.coded_shapes(header.spec, bad.prior))
        bad = bitstream.replace(bad, tensors=(header.tensors[0],) * coded)
        with pytest.raises(FormatError, match="freeze"):
            bitstream.read(bitstream.write(bad, b""))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 255))
def test_mutated_version_2_files_decode_or_fail_cleanly(encoded, position, value):
    """Any byte of a version 2 file changed (CRC fixed up, so the parser sees it): the
    decoder renders or raises one of kancoin's errors, never anything else."""
    path, _, result = encoded
    body = bytearray(result.data[:-4])
    body[position % len(body)] = value
    data = bytes(body) + zlib.crc32(body).to_bytes(4, "little")
    with contextlib.suppress(KancoinError):
        decoder.decode(data, prior=str(path))


def test_other_families_take_no_prior():
    spec = SirenSpec(in_features=2, out_features=3, layers=2, width=4)
    assert spec.takes_prior()
    from kancoin.models import FourierSpec, KanSpec

    assert not FourierSpec.takes_prior() and not KanSpec.takes_prior()
    with pytest.raises(UsageError, match="SIREN"):
        encoder.plan_encode(smooth_image(8, 8), model="kan", prior="t")


# planning and fitting


def test_the_coded_part_is_planned_from_the_whole_budget(prior_dir):
    image = smooth_image(64, 64)
    chosen = encoder.plan_encode(image, bpp=2.0, prior="t", freeze=2)
    assert chosen.freeze == 2 and chosen.spec.width == SPEC.width
    budget = 2.0 * 64 * 64
    per = chosen.spec.bits_per_param
    info = ImageInfo(64, 64, 3)
    assert chosen.expected_bits <= budget
    deeper = chosen.spec.replace(layers=chosen.spec.layers + 1)
    assert rate.expected_bits(deeper, info, per, 1, chosen.prior_ref) > budget or (
        chosen.spec.layers == 2 + 8  # the preset's depth cap above the frozen layers
    )
    assert chosen.freeze_rule == priors.find("t").rule_freeze()
    assert encoder.plan_encode(image, bpp=2.0, prior="t").freeze == chosen.freeze_rule


def test_freeze_zero_is_no_prior_and_too_deep_is_refused(prior_dir):
    image = smooth_image(32, 32)
    assert encoder.plan_encode(image, bpp=2.0, prior="t", freeze=0).prior_ref is None
    with pytest.raises(UsageError, match="freeze 4"):
        encoder.plan_encode(image, bpp=2.0, prior="t", freeze=4)
    with pytest.raises(PriorError, match="no prior named"):
        encoder.plan_encode(image, bpp=2.0, prior="missing")


def test_fast_step_with_frozen_layers_matches_autograd():
    torch.manual_seed(0)
    model = SPEC.build()
    model.freeze(2)
    coords = torch.rand(300, 2) * 2 - 1
    targets = torch.rand(300, 3)
    SirenFastStep(chunk=128)(model, coords, targets)
    fast = [None if p.grad is None else p.grad.clone() for p in model.all_tensors()]
    for p in model.all_tensors():
        p.grad = None
    torch.nn.functional.mse_loss(model(coords), targets).backward()
    for index, (mine, reference) in enumerate(zip(fast, model.all_tensors(), strict=True)):
        if index < 4:
            assert mine is None and reference.grad is None
        else:
            torch.testing.assert_close(mine, reference.grad, rtol=1e-4, atol=1e-6)


def test_both_cohort_methods_train_a_prior():
    members = cohort.members_from_images([smooth_image(16, 16, seed=s) for s in range(3)])
    for method, stored in (("shared", 3), ("reptile", 5)):
        config = cohort.CohortConfig(method=method, layers=4, width=8, steps=20, batch=64)
        spec, tensors = cohort.train(members, config)
        assert len(tensors) == 2 * stored and spec.width == 8
        data = priors.to_bytes(spec, tensors, members=[], name=method)
        assert priors.from_bytes(data).stored == stored


# command line


def test_cli_prior_train_info_encode_info(image_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(priors, "BUNDLED", tmp_path / "none")
    images = [str(image_file(16, 16, name=f"m{i}.png", seed=i)) for i in range(2)]
    out = tmp_path / "c.kprior"
    args = ["prior", "train", *images, "-o", str(out), "--layers", "3", "--width", "8"]
    assert main([*args, "--steps", "10", "--batch", "64", "-q"]) == 0
    assert main(["prior", "info", str(out), "--json"]) == 0
    assert '"stored_layers": 2' in capsys.readouterr().out
    inr = tmp_path / "x.inr"
    source = image_file(16, 16, name="x.png", seed=5)
    encode = ["encode", str(source), "-o", str(inr), "--bpp", "8", "--steps", "5", "-q"]
    assert main([*encode, "--prior", str(out), "--freeze", "1"]) == 0
    assert main(["info", str(inr)]) == 0
    assert "prior" in capsys.readouterr().out
    assert main(["decode", str(inr), "--prior", str(out), "-o", str(tmp_path / "y.png")]) == 0
    assert main([*encode, "--no-prior", "--prior", str(out), "-f"]) == 2


# the bundled prior


def test_the_bundled_prior_is_found_by_name(monkeypatch):
    monkeypatch.delenv(priors.ENV_PATH, raising=False)
    bundled = priors.find("photo")
    assert bundled.path == priors.BUNDLED / "photo.kprior"
    assert bundled.spec.describe() == "siren 6x48 (w0 30/30)" and bundled.stored == 5
    assert len(bundled.members) == 16 and bundled.dtype == 1
    assert bundled.path.stat().st_size < 32 * 1024  # small enough to ship


@pytest.mark.shared_data
def test_the_bundled_prior_was_not_trained_on_kodak():
    from kancoin.signals import load_image
    from tests.conftest import SHARED_DATA

    kodak = sorted((SHARED_DATA / "kodak").glob("kodim*.png"))
    if not kodak:
        pytest.skip(f"needs the Kodak images in {SHARED_DATA / 'kodak'}")
    members = set(priors.find("photo").members)
    for path in kodak:
        pixels = np.round(load_image(path) * 255).astype(np.uint8)
        assert priors.member_digest(pixels) not in members, path.name


def test_cohort_images_cut_tiles_every_stride(tmp_path):
    from PIL import Image

    from kancoin.prior_train import cohort_images

    pixels = np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    Image.fromarray(pixels[:10, :10]).save(tmp_path / "small.png")
    paths = [tmp_path / "a.png", tmp_path / "small.png"]
    apart = cohort_images(paths, (20, 20))
    assert [t.shape[:2] for t in apart] == [(20, 20)] * 6 + [(10, 10)]
    overlapping = cohort_images(paths, (20, 20), stride=(10, 10))
    assert len(overlapping) == 3 * 5 + 1
    np.testing.assert_array_equal(
        overlapping[1], (pixels[:20, 10:30] / np.float32(255)).astype(np.float32)
    )
