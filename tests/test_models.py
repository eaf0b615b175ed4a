"""The model contract: every registered family goes through the real path a user takes."""

from __future__ import annotations

import math

import pytest
import torch

import kancoin
from kancoin.models import MODEL_SPECS, Siren, SirenSpec
from kancoin.rd import available_codecs
from kancoin.rd.neural import AUDIO_ONLY
from kancoin.render import render
from tests.conftest import smooth_image

FAMILIES = [spec.name for spec in MODEL_SPECS.values()]
IMAGE_FAMILIES = [name for name in FAMILIES if name not in AUDIO_ONLY]  # grid1d: test_grid1d


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_every_family_encodes_decodes_at_any_scale_and_is_an_rd_codec(family):
    image = smooth_image(24, 32)
    result = kancoin.encode(image, bpp=8.0, steps=20, preset="fast", model=family)
    assert result.header.spec.name == family
    assert 8 * len(result.data) <= 8.0 * 24 * 32
    assert math.isfinite(result.psnr)
    assert kancoin.decode(result.data, scale=2).shape == (48, 64, 3)
    assert kancoin.decode(result.data, size=(40, 30)).shape == (30, 40, 3)
    assert family in available_codecs()


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_sizes_itself_for_a_budget(family):
    spec = MODEL_SPECS_BY_NAME[family](in_features=2, out_features=3)
    small = spec.size_for(
        20_000, overhead_bits=lambda s: 1000, bits_per_param=spec.bits_per_param, max_layers=8
    )
    large = spec.size_for(
        80_000, overhead_bits=lambda s: 1000, bits_per_param=spec.bits_per_param, max_layers=8
    )
    assert 1000 + spec.bits_per_param * small.num_params() <= 20_000
    assert small.num_params() < large.num_params()


MODEL_SPECS_BY_NAME = {spec.name: spec for spec in MODEL_SPECS.values()}


def test_render_uses_the_model_activation_not_a_sine():
    spec = SirenSpec(in_features=2, out_features=3, layers=2, width=16)
    torch.manual_seed(0)
    cosine = Siren(spec, activation=torch.cos)
    coords = torch.rand(5000, 2) * 2 - 1
    assert cosine.native_forward(coords) is None  # the native kernel computes sines
    assert torch.allclose(render(cosine, coords), cosine(coords))
    sine = Siren(spec)
    sine.load_state_dict(cosine.state_dict())
    assert not torch.allclose(render(sine, coords), cosine(coords), atol=1e-3)
