"""The Fourier-feature SIREN (`--model fourier`): its encoding, its steps, its file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import kancoin
from kancoin import bitstream, rate
from kancoin.cli import main
from kancoin.fit.select import select_step
from kancoin.fit.steps import autograd_step
from kancoin.models import FourierSpec, spec_class, spec_class_by_name
from kancoin.render import render
from kancoin.signals import ImageInfo, psnr, to_uint8
from tests.conftest import smooth_image


def test_encoding_is_the_coordinates_then_sines_and_cosines_per_octave():
    spec = FourierSpec(2, 3, layers=2, width=8, octaves=3)
    model = spec.build()
    coords = torch.tensor([[0.25, -0.5]])
    encoded = model.encode(coords)[0]
    assert encoded.shape[0] == spec.input_width() == 2 * (1 + 2 * 3)
    angles = [math.pi * 2**k * x for x in (0.25, -0.5) for k in range(3)]
    expected = [0.25, -0.5] + [math.sin(a) for a in angles] + [math.cos(a) for a in angles]
    assert encoded.tolist() == pytest.approx(expected, abs=1e-6)
    assert model.weights[0].shape == (8, spec.input_width())


@pytest.mark.parametrize("weighted", [False, True])
def test_fast_step_and_render_see_the_encoding(weighted):
    torch.manual_seed(0)
    model = FourierSpec(2, 3, layers=3, width=16, octaves=4).build()
    coords, targets = torch.rand(300, 2) * 2 - 1, torch.rand(300, 3)
    weights = torch.rand(300) if weighted else None
    step = select_step(model, torch.device("cpu"))
    grads = []
    for fn in (step, autograd_step):
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        fn(model, coords, targets, weights)
        grads.append([p.grad.clone() for p in model.parameters()])
    for fast, reference in zip(*grads, strict=True):
        assert torch.allclose(fast, reference, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(render(model, coords), model(coords), atol=1e-6)


def test_spec_survives_the_header():
    spec = FourierSpec(2, 3, layers=4, width=11, w0_first=12.5, octaves=5)
    assert spec_class(3) is FourierSpec and spec_class_by_name("fourier") is FourierSpec
    info = ImageInfo(height=5, width=6, channels=3)
    coding = bitstream.TensorCoding(0, kancoin.entropy.EntropyParams(0, 0, 0))
    header = bitstream.Header(info, spec, 1, (coding,) * len(spec.tensor_shapes()), psnr=30.0)
    data = bitstream.write(header, b"")
    assert bitstream.read(data)[0].spec == spec
    assert rate.header_bits(spec, info) == 8 * len(data)


def test_octaves_outside_the_header_field_are_refused():
    spec = FourierSpec(2, 3, layers=2, width=4, octaves=16)
    info = ImageInfo(height=5, width=6, channels=3)
    coding = bitstream.TensorCoding(0, kancoin.entropy.EntropyParams(0, 0, 0))
    header = bitstream.Header(info, spec, 1, (coding,) * len(spec.tensor_shapes()), psnr=0.0)
    with pytest.raises(ValueError, match="octaves"):
        bitstream.write(header, b"")


def test_round_trip_through_the_codec_and_the_cli(capsys, image_file):
    image = smooth_image(16, 24)
    result = kancoin.encode(image, bpp=40.0, model="fourier", steps=40, preset="fast")
    assert result.header.spec.name == "fourier" and 8 * len(result.data) <= 40.0 * 16 * 24
    decoded = kancoin.decode(result.data)
    measured = psnr(original=image, reconstruction=to_uint8(decoded).astype(np.float32) / 255)
    assert measured == pytest.approx(result.psnr, abs=1e-9)
    source = image_file(16, 24)
    argv = ["encode", str(source), "--model", "fourier", "--bpp", "40", "--steps", "5", "--json"]
    assert main([*argv, "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["model"].startswith("fourier ")
