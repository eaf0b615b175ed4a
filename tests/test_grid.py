"""The latent-grid model (model id 4): latent coder, format, rate, decoding anywhere.

The latent coder's tests run on both context layouts (id 4's checkerboard, id 22's raster)
and the file tests (`grid_file`) on both families; tests/test_grid_raster.py has id 22's
own."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import zlib

import numpy as np
import pytest
import torch
from conftest import REPO, smooth_image
from hypothesis import given, settings
from hypothesis import strategies as st

import kancoin
import kancoin.kernels
from kancoin import adapters, bitstream, decoder, grid_codec, latents
from kancoin.config import EncodeConfig
from kancoin.errors import FormatError, UsageError
from kancoin.models import GridSpec, spec_class
from kancoin.signals import to_uint8

ID4 = "grid-checkerboard"  # model id 4's name since id 22 took "grid"
GOLDEN = REPO / "tests" / "data" / "golden" / "v1" / "grid-rgb.inr"
# sha256 of the golden file's 8-bit decode at 1x (regenerate only with a format change)
GOLDEN_DECODED_SHA256 = "ed2c141fb26e3e5b1cd3f8b231c1a56804b1f36d63a80c3f5e8202db8f419c07"
# the same for a file whose finest level is flagged all zero (written by grid_codec.encode of
# smooth_image(32, 48) at 2 bpp, 80 steps, context 4, freeze_finest; docs/GRID.md)
GOLDEN_ZERO = REPO / "tests" / "data" / "golden" / "v1" / "grid-zero-level.inr"
GOLDEN_ZERO_DECODED_SHA256 = "72894dc6e22979ff1e69a5f2d48fd07a636dbad46e18302af1f851041a122f7a"


def _random_levels(rng, shapes, spread=2.0):
    return [
        np.clip(
            np.round(rng.laplace(0, spread, s)), -latents.LATENT_MAX, latents.LATENT_MAX
        ).astype(np.int64)
        for s in shapes
    ]


LAYOUTS = pytest.mark.parametrize("layout", [latents.CHECKERBOARD, latents.RASTER], ids=str)


def _context_ints(rng, levels: int, hidden: int, layout=latents.CHECKERBOARD) -> list[np.ndarray]:
    net = latents.ContextNet(levels, hidden, layout)
    out = [rng.integers(-300, 300, size=(levels, 2))]
    if hidden:
        out += [
            rng.integers(-200, 200, size=(hidden, layout.features)),
            rng.integers(-200, 200, size=hidden),
            rng.integers(-200, 200, size=(2, hidden)),
            rng.integers(-200, 200, size=2),
        ]
    assert len(out) == len(net.coded_tensors())
    return out


@LAYOUTS
@pytest.mark.parametrize("hidden", [0, 8])
def test_latents_round_trip_exact_and_bits_match_the_coder(hidden, layout):
    rng = np.random.default_rng(hidden)
    shapes = [(33, 47), (17, 24), (9, 12), (5, 6), (3, 3)]
    levels = _random_levels(rng, shapes)
    weights = _context_ints(rng, len(shapes), hidden, layout)
    data, bits = latents.encode(levels, weights, layout)
    decoded, decoded_bits = latents.decode(data, shapes, weights, layout)
    for a, b in zip(levels, decoded, strict=True):
        np.testing.assert_array_equal(a, b)
    assert decoded_bits == bits
    assert sum(bits) <= 8 * len(data) <= sum(bits) + 64  # the range coder's overhead only


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    height=st.integers(1, 20),
    width=st.integers(1, 20),
    levels=st.integers(1, 4),
    hidden=st.sampled_from([0, 3]),
    spread=st.floats(0.1, 20),
    zero=st.booleans(),
    layout=st.sampled_from([latents.CHECKERBOARD, latents.RASTER]),
)
def test_latents_round_trip_property(seed, height, width, levels, hidden, spread, zero, layout):
    rng = np.random.default_rng(seed)
    spec = GridSpec(in_features=2, out_features=3, height=height, width=width, levels=levels)
    shapes = spec.level_shapes()
    values = _random_levels(rng, shapes, spread)
    weights = _context_ints(rng, levels, hidden, layout)
    if zero:  # the finest level all zero and flagged
        values[0][:] = 0
        weights[0][0, 1] = latents.ZERO_LEVEL
    data, _ = latents.encode(values, weights, layout)
    decoded, _ = latents.decode(data, shapes, weights, layout)
    for a, b in zip(values, decoded, strict=True):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(
    junk=st.binary(min_size=0, max_size=64),
    seed=st.integers(0, 1000),
    layout=st.sampled_from([latents.CHECKERBOARD, latents.RASTER]),
)
def test_latent_decoder_on_junk_returns_levels_or_format_error(junk, seed, layout):
    rng = np.random.default_rng(seed)
    shapes = [(6, 5), (3, 3)]
    weights = _context_ints(rng, 2, 3, layout)
    junk = junk[: len(junk) // 4 * 4]
    try:
        levels, _ = latents.decode(junk, shapes, weights, layout)
    except FormatError:
        return
    assert all(np.abs(level).max() <= latents.LATENT_MAX for level in levels)


def test_integer_context_is_bounded_and_rejects_huge_weights():
    rng = np.random.default_rng(0)
    weights = _context_ints(rng, 2, 4)
    feats = torch.from_numpy(rng.integers(-31, 32, size=(100, latents.FEATURES)))
    params = latents.int_params(weights, feats, 1)
    assert params[:, 0].abs().max() <= latents.LATENT_MAX
    assert params[:, 1].min() >= 0 and params[:, 1].max() < latents.SCALES * latents.FRACTIONS
    weights[1][0, 0] = latents.CONTEXT_MAX_INT + 1
    with pytest.raises(FormatError):
        latents.decode(b"", [(2, 2), (1, 1)], weights)


@LAYOUTS
def test_an_all_zero_level_is_flagged_and_costs_no_bits(layout):
    rng = np.random.default_rng(3)
    shapes = [(33, 47), (17, 24), (9, 12)]
    levels = _random_levels(rng, shapes)
    levels[0][:] = 0
    weights = _context_ints(rng, len(shapes), 4, layout)
    unflagged, unflagged_bits = latents.encode(levels, weights, layout)
    weights = latents.refit_level_bias(levels, weights, layout)
    assert latents.zero_levels(weights) == [True, False, False]
    data, bits = latents.encode(levels, weights, layout)
    assert bits[0] == 0 and unflagged_bits[0] > 0 and len(data) < len(unflagged)
    decoded, decoded_bits = latents.decode(data, shapes, weights, layout)
    for a, b in zip(levels, decoded, strict=True):
        np.testing.assert_array_equal(a, b)
    assert decoded_bits == bits
    levels[0][5, 5] = 1  # the flag promises zeros
    with pytest.raises(ValueError):
        latents.encode(levels, weights, layout)
    weights[1][0, 0] = latents.ZERO_LEVEL  # the flag's value anywhere else is out of range
    with pytest.raises(FormatError):
        latents.decode(data, shapes, weights, layout)


def test_committed_table_is_what_the_script_writes():
    spec = importlib.util.spec_from_file_location(
        "make_grid_table", REPO / "scripts" / "make_grid_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.table().astype("<u2").tobytes() == latents.TABLE_PATH.read_bytes()
    rows = latents.table()
    np.testing.assert_array_equal(rows.sum(axis=1), 1.0)


@pytest.mark.parametrize("upsampling", [0, 1])
def test_training_upsampling_agrees_with_decoding_at_pixel_centres(upsampling):
    spec = GridSpec(
        in_features=2, out_features=3, height=19, width=26, levels=4, upsampling=upsampling
    )
    model = spec.build()
    with torch.no_grad():
        for level in model.latents:
            level.normal_()
    coords = kancoin.signals.image_grid(19, 26)
    full = model.upsample_full(list(model.latents))
    sampled = model.sample(list(model.latents), coords)
    torch.testing.assert_close(full, sampled, atol=1e-5, rtol=1e-5)


FAMILIES = {ID4: 4, "grid": 22}  # name -> model id: the file tests run on both


@pytest.fixture(scope="module", params=list(FAMILIES))
def grid_file(request):
    image = smooth_image(48, 64)
    result = kancoin.encode(image, model=request.param, bpp=2.0, steps=120, threads=1)
    assert result.header.spec.model_id == FAMILIES[request.param]
    return image, result


def test_encode_meets_the_rate_and_reports_the_decoded_psnr(grid_file):
    image, result = grid_file
    assert 8 * len(result.data) <= 2.0 * image.shape[0] * image.shape[1]
    decoded = kancoin.decode(result.data)
    psnr = kancoin.signals.psnr(original=image, reconstruction=to_uint8(decoded) / 255.0)
    assert psnr == pytest.approx(result.psnr, abs=1e-6)
    flat = np.broadcast_to(image.mean(axis=(0, 1)), image.shape)
    assert result.psnr > kancoin.signals.psnr(original=image, reconstruction=flat) + 3


@pytest.mark.parametrize("bpp", [0.5, 1.5, 4.0])
def test_rate_is_never_exceeded_and_mostly_used(bpp):
    image = smooth_image(64, 96, seed=3)
    result = kancoin.encode(image, model="grid-checkerboard", bpp=bpp, steps=30, threads=1)
    budget = bpp * 64 * 96
    assert 8 * len(result.data) <= budget
    assert 8 * len(result.data) >= 0.5 * budget  # tiny images: the header is a large share


def test_same_seed_same_bytes_whatever_the_global_random_state():
    """The networks' initial weights come from the seed, not from whatever ran before."""
    image = smooth_image(48, 64, seed=5)
    files = []
    for state in (1, 2):
        torch.manual_seed(state)
        files.append(kancoin.encode(image, model=ID4, bpp=2.0, steps=12, threads=1).data)
    assert files[0] == files[1]
    other = kancoin.encode(image, model=ID4, bpp=2.0, steps=12, threads=1, seed=1).data
    assert other != files[0]


def test_decodes_at_any_size(grid_file):
    _, result = grid_file
    assert kancoin.decode(result.data, scale=2).shape == (96, 128, 3)
    assert kancoin.decode(result.data, size=(33, 17)).shape == (17, 33, 3)
    native = kancoin.decode(result.data)
    double = kancoin.decode(result.data, scale=2)
    pooled = double.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(pooled - native).mean() < 0.03


def test_identical_pixels_with_one_and_two_threads_and_without_native_kernels(
    grid_file, monkeypatch
):
    _, result = grid_file
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = kancoin.decode(result.data, scale=1.5)
        torch.set_num_threads(2)
        two = kancoin.decode(result.data, scale=1.5)
        monkeypatch.setattr(kancoin.kernels, "native_available", lambda: False)
        plain = kancoin.decode(result.data, scale=1.5)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(to_uint8(one), to_uint8(two))
    np.testing.assert_array_equal(to_uint8(one), to_uint8(plain))


def test_payload_report_splits_the_rate(grid_file):
    _, result = grid_file
    header, payload = decoder.read_file(result.data)
    report = grid_codec.payload_report(header, payload)
    assert len(report["latent_bits_per_level"]) == header.spec.levels
    assert report["network_bits"] + report["latent_bits"] + 32 == 8 * len(payload)
    assert sum(report["latent_bits_per_level"]) <= report["latent_bits"]


def _with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_corrupt_payload_is_a_format_error(grid_file):
    _, result = grid_file
    header_length = int.from_bytes(result.data[6:8], "big")
    body = bytearray(result.data[:-4])
    body[header_length : header_length + 4] = (10**6).to_bytes(4, "little")  # word count
    with pytest.raises(FormatError):
        kancoin.decode(_with_crc(bytes(body)))


@settings(max_examples=30, deadline=None)
@given(position=st.integers(0, 10**6), value=st.integers(0, 255))
def test_payload_byte_flips_decode_or_fail_cleanly(grid_file, position, value):
    _, result = grid_file
    header_length = int.from_bytes(result.data[6:8], "big")
    body = bytearray(result.data[:-4])
    index = header_length + position % (len(body) - header_length)
    body[index] = value
    try:
        decoded = kancoin.decode(_with_crc(bytes(body)))
    except FormatError:
        return
    assert decoded.shape == (48, 64, 3) and np.isfinite(decoded).all()


def test_grid_header_fields_are_checked(grid_file):
    _, result = grid_file
    header, payload = bitstream.read(result.data)
    assert spec_class(4) is GridSpec
    with pytest.raises(ValueError):
        bitstream.write(
            bitstream.Header(
                header.signal, header.spec.replace(levels=13), 1, header.tensors, None
            ),
            payload,
        )


def test_grid_is_for_images_only():
    samples = np.zeros((1600, 1), dtype=np.float32)
    with pytest.raises(UsageError):
        kancoin.encode(samples, sample_rate=16000, model="grid-checkerboard", kbps=32, steps=2)


def test_golden_file_decodes_to_the_recorded_pixels():
    """A 48x32 file with a context model (written by the first grid session): old files
    keep decoding to the same pixels."""
    data = GOLDEN.read_bytes()
    header, payload = decoder.read_file(data)
    assert header.spec.context_hidden == 4
    assert grid_codec.payload_report(header, payload)["latent_bits_per_level"][0] == 2702.2
    decoded = to_uint8(kancoin.decode(data))
    assert hashlib.sha256(decoded.tobytes()).hexdigest() == GOLDEN_DECODED_SHA256


def test_golden_file_with_a_zero_level_decodes_to_the_recorded_pixels():
    """A 48x32 file whose finest level is flagged all zero (third grid session)."""
    data = GOLDEN_ZERO.read_bytes()
    header, payload = decoder.read_file(data)
    bits = grid_codec.payload_report(header, payload)["latent_bits_per_level"]
    assert bits[0] == 0 and all(b > 0 for b in bits[1:3])
    decoded = to_uint8(kancoin.decode(data))
    assert hashlib.sha256(decoded.tobytes()).hexdigest() == GOLDEN_ZERO_DECODED_SHA256


def test_cli_encode_info_decode_at_another_size(capsys, image_file, tmp_path):
    from kancoin.cli import main

    source = image_file(40, 56)
    argv = ["encode", source, "--model", "grid-checkerboard", "--bpp", "3", "--steps", "20", "-q"]
    assert main(list(map(str, argv))) == 0
    inr = source.with_suffix(".inr")
    capsys.readouterr()
    assert main(["info", str(inr), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_id"] == 4 and len(info["rate_split"]["latent_bits_per_level"]) == 7
    out = tmp_path / "big.png"
    assert main(["decode", str(inr), "-o", str(out), "--size", "100x70"]) == 0
    assert out.is_file()
    assert main(["decode", str(GOLDEN), "-o", str(tmp_path / "corrupt.png")]) == 0
    damaged = tmp_path / "damaged.inr"
    damaged.write_bytes(GOLDEN.read_bytes()[:-9] + b"\0" * 5 + GOLDEN.read_bytes()[-4:])
    assert main(["decode", str(damaged), "-o", str(tmp_path / "x.png")]) == FormatError.exit_code


def test_spec_sizes_its_networks_for_the_budget():
    spec = GridSpec(in_features=2, out_features=3, height=512, width=768)
    large = spec.size_for_budget(0.3 * 512 * 768, 9.0)
    small = spec.size_for_budget(20_000, 9.0)
    assert (large.hidden, large.context_hidden) == (16, 16)
    assert small.num_network_params() < large.num_network_params()
    assert spec.size_for_budget(None, 9.0) == spec
    assert large.num_params() == large.num_network_params() + large.num_latents()
    assert large.macs_per_pixel() <= 2000  # the decoder budget


def test_an_image_with_more_latents_than_a_file_holds_is_refused_before_training():
    from kancoin import adapters
    from kancoin.errors import InputError
    from kancoin.signals import ImageInfo

    kind = adapters.ImageKind(ImageInfo(4000, 4000, 3), np.zeros((1, 1, 3), np.float32))
    config = EncodeConfig().with_options(model="grid-checkerboard", bpp=0.3, steps=1)
    with pytest.raises(InputError):
        grid_codec.encode(kind, config, 0.3 * 4000 * 4000, torch.device("cpu"))


def test_plan_prints_the_grids_own_schedule(capsys, image_file):
    from kancoin.cli import main

    source = image_file(40, 56)
    argv = ["encode", str(source), "--model", "grid-checkerboard", "--bpp", "3", "--preset", "fast"]
    assert main([*argv, "--plan"]) == 0
    text = capsys.readouterr().out
    assert f"{grid_codec.STEPS['fast']} full-image steps" in text
    assert "fine-tune" in text and "latents" in text
    assert main([*argv, "--plan", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["phases"][0]["steps"] == grid_codec.STEPS["fast"]
    assert summary["budget_bits"] == 3 * 40 * 56
    assert not source.with_suffix(".inr").exists()  # a plan fits and writes nothing


@pytest.mark.parametrize("bpp", [0.3, 3.0])
def test_low_rates_freeze_the_finest_level_and_spend_the_saved_work_on_steps(bpp):
    image = smooth_image(256, 384)
    kind = adapters.ImageKind.load(image)
    config = EncodeConfig().with_options(model="grid-checkerboard", bpp=bpp, preset="fast")
    chosen = grid_codec.plan(kind, config)
    frozen = bpp <= grid_codec.FREEZE_MAX_BPP
    assert chosen.fit.freeze_finest == frozen
    gain = grid_codec.FROZEN_STEP_GAIN if frozen else 1
    assert chosen.fit.steps == round(grid_codec.STEPS["fast"] * gain)
    explicit = grid_codec.plan(kind, config.with_options(steps=7))
    assert explicit.fit.steps == 7  # --steps is taken as given


def test_warm_start_codes_the_image_before_any_full_resolution_step():
    from kancoin.fit import grid_trainer

    image = torch.from_numpy(smooth_image(32, 48, seed=5))
    spec = GridSpec(in_features=2, out_features=3, height=32, width=48, levels=4)
    model = spec.build()
    grid_trainer._warm_start(model, image, grid_trainer.GridFitConfig(steps=1, warm_steps=60), None)
    assert not model.latents[0].any()  # the finest level is new: it starts at zero
    assert all(level.any() for level in model.latents[1:])
    with torch.no_grad():
        pixels = model.synthesize(model.upsample_full(list(model.latents)))
    mse = float((pixels - image.reshape(pixels.shape)).pow(2).mean())
    flat = float((image - image.mean(dim=(0, 1))).pow(2).mean())
    assert mse < 0.5 * flat


@pytest.mark.parametrize("detailed", [True, False])
def test_warm_start_raises_the_first_lambda_only_for_an_expensive_image(detailed):
    """With a rate target the half-resolution fit steers its lambda to it; the full fit starts
    from that lambda when it is higher (the image costs more than the prior assumed), else
    from the configured one."""
    from kancoin.fit import grid_trainer

    if detailed:
        image = torch.from_numpy(np.random.default_rng(3).random((32, 48, 3), dtype=np.float32))
        lam, target = 1e-5, 0.05  # noise at a twentieth of a bit per pixel: far too low a lambda
    else:
        image = torch.from_numpy(smooth_image(32, 48, seed=3))
        lam, target = 0.005, 4.0  # a smooth image with room to spare: the lambda stays
    spec = GridSpec(in_features=2, out_features=3, height=32, width=48, levels=4)

    def first_lambda(share):
        config = grid_trainer.GridFitConfig(
            steps=100, warm_steps=100, lam=lam, target_bpp=target, warm_rate_share=share
        )
        fit = grid_trainer.fit_grid(spec.build(), image, config)
        return fit.history[0][4]  # step 25: before the controller starts (30 % of the steps)

    assert first_lambda(None) == pytest.approx(lam)
    if detailed:
        assert first_lambda(1.0) > 4 * lam
    else:
        assert first_lambda(1.0) == pytest.approx(lam)


def test_synthesis_tuning_on_fixed_latents_only_lowers_the_error():
    from kancoin.fit import grid_trainer

    image = torch.from_numpy(smooth_image(24, 32, seed=6))
    spec = GridSpec(in_features=2, out_features=3, height=24, width=32, levels=3)
    model = spec.build()
    with torch.no_grad():
        for level in model.latents:
            level.copy_(torch.randint(-3, 4, level.shape))
    latents = [y.detach().clone() for y in model.latents]
    before, after = grid_trainer.tune_synthesis(model, image, steps=20)
    assert after >= before
    assert all(torch.equal(a, b) for a, b in zip(latents, model.latents, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    hidden=st.integers(1, 63),
    latents_bound=st.sampled_from([1, latents.LATENT_MAX, 3 * latents.LATENT_MAX]),
    seed=st.integers(0, 2**32 - 1),
)
def test_context_model_in_float64_equals_int64_arithmetic(hidden, latents_bound, seed):
    """The decoder's context products run on float64 BLAS; with weights at the format's
    bound and latents beyond their range every sum is an exact integer: the int64 result."""
    rng = np.random.default_rng(seed)
    bound = latents.CONTEXT_MAX_INT
    levels = 3
    weights = [
        rng.integers(-bound, bound + 1, size=(levels, 2)),
        rng.integers(-bound, bound + 1, size=(hidden, latents.FEATURES)),
        rng.integers(-bound, bound + 1, size=hidden),
        rng.integers(-bound, bound + 1, size=(2, hidden)),
        rng.integers(-bound, bound + 1, size=2),
    ]
    weights[1][0, :] = bound  # the extreme: one unit summing the largest products
    feats = torch.from_numpy(
        rng.integers(-latents_bound, latents_bound + 1, size=(500, latents.FEATURES))
    )
    feats[0] = latents_bound
    w1, b1, w2, b2 = (torch.from_numpy(w.astype(np.int64).reshape(-1)) for w in weights[1:])
    acc = feats @ w1.reshape(hidden, latents.FEATURES).t() + b1
    acc = torch.relu(acc) @ w2.reshape(2, hidden).t()
    expected = torch.from_numpy(weights[0].reshape(-1, 2))[1] + (acc >> latents.FIXED_BITS) + b2
    assert torch.equal(latents._int_outputs(weights, feats, 1), expected)


def test_progress_covers_the_warm_start_and_the_fit_in_one_rising_share():
    """A fit's progress starts with its half-resolution warm start, so the time estimate
    made from the first reports is not inflated by a warm start it did not count."""
    from kancoin.fit import grid_trainer

    image = torch.from_numpy(smooth_image(32, 48, seed=7))
    spec = GridSpec(in_features=2, out_features=3, height=32, width=48, levels=4)
    config = grid_trainer.GridFitConfig(steps=100, warm_steps=100)
    shares = []
    grid_trainer.fit_grid(spec.build(), image, config, progress=lambda *a: shares.append(a[1]))
    assert shares == sorted(shares) and shares[-1] == pytest.approx(1.0)
    warm_share = grid_trainer.WARM_STEP_COST * 100 / (grid_trainer.WARM_STEP_COST * 100 + 100)
    assert shares[0] < warm_share < shares[-1]
    assert any(s == pytest.approx(warm_share) for s in shares)  # the warm start's end
