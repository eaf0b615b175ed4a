"""The latent grid's convolutional stage (model id 21): taps one reference pixel apart,
so a file still decodes at any size; its weights are coded and counted like the synthesis'."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import smooth_image

import kancoin
from kancoin import decoder, grid_codec
from kancoin.models import GridSpec
from kancoin.models.grid import GridConvSpec, _reference_conv, _sampled_conv
from kancoin.signals import to_uint8


def _weights(seed: int, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(channels, channels, 3, 3, generator=generator) * 0.1
    return weight, torch.randn(channels, generator=generator) * 0.1


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_taps_one_reference_pixel_apart_are_a_dilated_replicate_padded_convolution(scale):
    torch.manual_seed(scale)
    image = torch.rand(1, 3, 5 * scale, 7 * scale, dtype=torch.float64)
    weight, bias = (t.double() for t in _weights(scale))
    padded = F.pad(image, (scale,) * 4, mode="replicate")
    plain = F.conv2d(padded, weight, bias, dilation=scale)
    assert torch.equal(_reference_conv(image, weight, bias, 5, 7), plain)
    # the bilinear path, used at other sizes, agrees where its taps land on pixel centres
    assert torch.allclose(_sampled_conv(image, weight, bias, 5, 7), plain, atol=1e-12)


def test_taps_between_pixels_interpolate_the_rendering():
    """A linear ramp stays a ramp under bilinear reads: a tap one reference pixel to the
    right reads the ramp one reference pitch further, at any output size."""
    height, width, h, w = 4, 6, 10, 15  # 2.5x
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) / w
    image = xs.reshape(1, 1, 1, w).expand(1, 1, h, w).contiguous()
    weight = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    weight[0, 0, 1, 2] = 1.0  # the right-hand tap only
    out = _reference_conv(image, weight, torch.zeros(1, dtype=torch.float64), height, width)
    inside = xs + 1 / width < (w - 0.5) / w  # away from the border's clamp
    assert torch.allclose(out[0, 0, 0, inside], (xs + 1 / width)[inside], atol=1e-12)


def test_a_grid_file_without_the_stage_cannot_hold_one():
    spec = GridSpec(in_features=2, out_features=3, height=8, width=8, conv_layers=2)
    with pytest.raises(ValueError):
        spec.header_values()
    conv = spec.writable()
    assert conv.model_id == GridConvSpec.model_id and conv.conv_layers == 2
    assert GridSpec(in_features=2, out_features=3).writable().model_id == 4
    base = GridSpec(in_features=2, out_features=3, height=512, width=768)
    assert conv.replace(height=512, width=768).macs_per_pixel() == base.macs_per_pixel() + 162
    assert len(conv.synthesis_shapes()) == len(base.synthesis_shapes()) + 4


@pytest.fixture(scope="module")
def conv_file():
    image = smooth_image(48, 64, seed=2)
    result = kancoin.encode(image, model="grid-conv", bpp=2.0, steps=60, threads=1)
    return image, result


def test_the_stage_round_trips_and_its_weights_are_in_the_file(conv_file):
    image, result = conv_file
    assert 8 * len(result.data) <= 2.0 * 48 * 64
    header, payload = decoder.read_file(result.data)
    assert header.spec.model_id == 21 and header.spec.conv_layers == 2
    assert "2 residual 3x3 conv" in header.spec.describe()
    model = grid_codec.load_models(header, payload, torch.device("cpu"))[0]
    assert any(layer.weight.abs().sum() > 0 for layer in model.conv)  # trained, coded
    decoded = kancoin.decode(result.data)
    psnr = kancoin.signals.psnr(original=image, reconstruction=to_uint8(decoded) / 255.0)
    assert psnr == pytest.approx(result.psnr, abs=1e-6)
    report = grid_codec.payload_report(header, payload)
    assert report["macs_per_pixel"] == header.spec.macs_per_pixel()


def test_the_stage_decodes_at_any_size(conv_file):
    _, result = conv_file
    native = kancoin.decode(result.data)
    double = kancoin.decode(result.data, scale=2)
    assert double.shape == (96, 128, 3)
    pooled = double.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(pooled - native).mean() < 0.03
    other = kancoin.decode(result.data, size=(1000, 700))
    assert other.shape == (700, 1000, 3) and np.isfinite(other).all()
    assert kancoin.decode(result.data, size=(33, 17)).shape == (17, 33, 3)


def test_the_stage_decodes_the_same_pixels_with_one_and_two_threads(conv_file):
    _, result = conv_file
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [kancoin.decode(result.data, scale=s) for s in (1, 1.5)]
        torch.set_num_threads(2)
        two = [kancoin.decode(result.data, scale=s) for s in (1, 1.5)]
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(to_uint8(a), to_uint8(b))
