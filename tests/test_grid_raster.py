"""The latent grid with a raster context and cascade upsampling (model id 22, `--model grid`).

The latent coder's round trips, property and junk tests run on both layouts in
tests/test_grid.py; these are id 22's own: wavefront order, the decoder's gather against the
training features, the cascade at any coordinates, files, header (its golden file,
grid-raster-rgb, is in tests/test_golden.py's list)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import smooth_image
from hypothesis import given, settings
from hypothesis import strategies as st

import kancoin
import kancoin.kernels
from kancoin import adapters, bitstream, grid_codec, latents
from kancoin.config import EncodeConfig
from kancoin.errors import RateError
from kancoin.models import GridSpec, RasterGridSpec, spec_class, spec_class_by_name
from kancoin.signals import image_grid


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 30), width=st.integers(1, 30))
def test_every_raster_neighbour_is_in_an_earlier_wavefront(height, width):
    when = np.full(height * width + 1, -1)  # the outside slot: always "decoded"
    for t, positions in enumerate(latents._wavefronts(height, width)):
        when[positions] = t
    assert (when[:-1] >= 0).all()  # every latent once
    neighbours = latents._raster_index(height, width)
    for t, positions in enumerate(latents._wavefronts(height, width)):
        assert (when[neighbours[positions]] < t).all()


def test_decoders_gather_is_the_training_features():
    rng = np.random.default_rng(0)
    level = rng.integers(-31, 32, size=(13, 17))
    feature_map = latents.RASTER.feature_map(torch.from_numpy(level), None).reshape(-1, 8).numpy()
    buffer = np.r_[level.reshape(-1), 0]
    np.testing.assert_array_equal(feature_map, buffer[latents._raster_index(13, 17)])
    floats = latents.RASTER.feature_map(torch.from_numpy(level).double(), None).reshape(-1, 8)
    np.testing.assert_array_equal(floats.numpy(), feature_map)


@settings(max_examples=60, deadline=None)
@given(hidden=st.sampled_from([0, 1, 8, 63]), seed=st.integers(0, 2**32 - 1))
def test_raster_coders_numpy_context_is_int_params(hidden, seed):
    """The integer context network (numpy, float64 products) is int64 arithmetic and the
    format's rounding to rows, at the weight bound, on 8 raster features with latents
    beyond their range (a corrupt file's): checked against a plain int64 reference."""
    rng = np.random.default_rng(seed)
    bound = latents.CONTEXT_MAX_INT
    weights = [rng.integers(-bound, bound + 1, size=(3, 2))]
    if hidden:
        weights += [
            rng.integers(-bound, bound + 1, size=(hidden, 8)),
            rng.integers(-bound, bound + 1, size=hidden),
            rng.integers(-bound, bound + 1, size=(2, hidden)),
            rng.integers(-bound, bound + 1, size=2),
        ]
    feats = rng.integers(-130, 131, size=(300, 8))
    out = torch.from_numpy(weights[0][2]).expand(300, 2)
    if hidden:
        w1, b1, w2, b2 = (torch.from_numpy(w.astype(np.int64)) for w in weights[1:])
        acc = torch.relu(torch.from_numpy(feats) @ w1.t() + b1) @ w2.t()
        out = out + (acc >> latents.FIXED_BITS) + b2
    f = latents.FIXED_BITS  # docs/FORMAT.md's rounding of (mean, log2 scale) to a row
    q4 = ((out[:, 0] + 32) >> (f - 2)).clamp(-124, 124)
    k = (((6 * out[:, 1] + (21 << f)) >> (f - 1)) + 1 >> 1).clamp(0, 47)
    m = (q4 + 2) >> 2
    expected = torch.stack([m, 4 * k + q4 - 4 * m + 2], dim=1).numpy()
    np.testing.assert_array_equal(latents._LevelContext(weights, 2).params(feats), expected)
    np.testing.assert_array_equal(latents.int_params(weights, torch.from_numpy(feats), 2), expected)


def test_cascade_samples_at_pixel_centres_what_training_sees():
    spec = RasterGridSpec(in_features=2, out_features=3, height=19, width=26, levels=4)
    model = spec.build()
    with torch.no_grad():
        for level in model.latents:
            level.normal_()
    full = model.upsample_full(list(model.latents))
    sampled = model.sample(list(model.latents), image_grid(19, 26))
    torch.testing.assert_close(full, sampled, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        for level in model.latents:
            level.fill_(2.0)
    assert torch.allclose(model.upsample_full(list(model.latents)), torch.tensor(2.0))


def test_grid_is_the_raster_family_and_id_4_keeps_its_name():
    assert spec_class_by_name("grid") is RasterGridSpec and spec_class(22) is RasterGridSpec
    assert spec_class_by_name("grid-checkerboard") is GridSpec and spec_class(4) is GridSpec
    spec = RasterGridSpec(in_features=2, out_features=3, height=512, width=768)
    assert spec.macs_per_pixel() <= 2000  # the decoder budget


def test_plan_trains_every_level_with_coolchics_schedule():
    kind = adapters.ImageKind.load(smooth_image(256, 384))
    chosen = grid_codec.plan(kind, EncodeConfig().with_options(model="grid", bpp=0.3))
    assert not chosen.fit.freeze_finest  # id 4 freezes it at 0.3 bpp; id 22's pays
    assert chosen.fit.ste_share == 0 and chosen.fit.gaussian_noise == (0.22, 0.15)
    assert chosen.fit.lam == pytest.approx(0.001 * (0.3 / chosen.latent_bpp) ** 2)


def test_an_overshoot_is_trained_away_not_requantized(monkeypatch):
    """Without its controller (lambda far too low) the fit lands far over the budget; the
    repair trains on at a higher lambda until the step-1 file fits. Re-quantizing the
    integer-valued latents instead finds no fitting step on this image."""
    image = smooth_image(48, 64, seed=4)
    kind = adapters.ImageKind.load(image)
    config = EncodeConfig().with_options(model="grid", bpp=2.0, steps=60, seed=0)
    budget = kind.budget_bits(config)
    overshoot = {"lam": 3e-5, "target_bpp": None}
    encoded = grid_codec.encode(kind, config, budget, torch.device("cpu"), fit_changes=overshoot)
    assert 8 * len(encoded.data) <= budget and encoded.step1_share <= 1.0
    monkeypatch.setattr(RasterGridSpec, "repairs_rate", False)
    with pytest.raises(RateError):
        grid_codec.encode(kind, config, budget, torch.device("cpu"), fit_changes=overshoot)


def test_a_rate_repair_is_shown_as_its_own_phase():
    """After the fit the bar stays full while each repair round, the rate loop and the
    synthesis fine-tuning name themselves; the repair's steps still update it."""
    image = smooth_image(48, 64, seed=4)
    kind = adapters.ImageKind.load(image)
    config = EncodeConfig().with_options(model="grid", bpp=2.0, steps=60, seed=0)
    events = []

    class Sink:
        def __call__(self, step, done, psnr, elapsed):
            events.append(("step", done))

        def phase(self, name):
            events.append(("phase", name))

    overshoot = {"lam": 3e-5, "target_bpp": None}
    grid_codec.encode(
        kind, config, kind.budget_bits(config), torch.device("cpu"), Sink(), fit_changes=overshoot
    )
    phases = [name for kind_, name in events if kind_ == "phase"]
    assert phases[0].startswith("rate repair 1/") and "of the budget" in phases[0]
    assert phases[-3:] == ["bit allocation", "fine-tuning", "bit allocation"]
    first = events.index(("phase", phases[0]))
    after = [done for kind_, done in events[first:] if kind_ == "step"]
    assert after and all(done == 1.0 for done in after)
    events.clear()
    kancoin.encode(image, model="grid", bpp=2.0, steps=30, threads=1, progress=Sink())
    assert [name for kind_, name in events if kind_ == "phase"][-1] == "verification"


@pytest.fixture(scope="module")
def raster_file():
    """(file tests common to both families are tests/test_grid.py's, on `grid_file`)"""
    return kancoin.encode(smooth_image(48, 64), model="grid", bpp=2.0, steps=30, threads=1)


def test_only_id_22_takes_the_cascade(raster_file):
    header, payload = bitstream.read(raster_file.data)
    assert header.spec.upsampling == 2
    with pytest.raises(ValueError):
        bitstream.write(
            bitstream.Header(header.signal, header.spec.replace(upsampling=3), 1, header.tensors),
            payload,
        )
    old = GridSpec(in_features=2, out_features=3, height=48, width=64, upsampling=2)
    with pytest.raises(ValueError):
        bitstream.write(bitstream.Header(header.signal, old, 1, header.tensors), payload)
