"""The latent grid with a KAN synthesis (activation "kan"): it trains, its weights are
coded in the file, and a reader decodes exactly what the writer measured."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from conftest import REPO, smooth_image

import kancoin
from kancoin import adapters, decoder, grid_codec
from kancoin.config import EncodeConfig
from kancoin.models import GridSpec
from kancoin.models.grid import ACTIVATIONS
from kancoin.models.grid_kan import KAN_GRID, KAN_ORDER
from kancoin.signals import to_uint8

KAN = ACTIVATIONS.index("kan")


def test_kan_synthesis_tensors_are_the_specs():
    spec = GridSpec(in_features=2, out_features=3, height=8, width=8, levels=3, hidden=4)
    spec = spec.replace(activation=KAN)
    model = spec.build()
    shapes = [shape for _, shape in spec.synthesis_shapes()]
    assert [tuple(t.shape) for t in model.synthesis_tensors()] == shapes
    assert shapes[3] == (4, 4, KAN_GRID + KAN_ORDER)  # the first KAN layer's coefficients
    assert spec.num_network_params() == sum(t.numel() for t in model.coded_tensors())
    model.init_output(torch.tensor([0.2, 0.5, 0.7]))
    with torch.no_grad():
        out = model.synthesize(torch.zeros(5, 3))
    assert torch.allclose(out, torch.tensor([0.2, 0.5, 0.7]).expand(5, 3), atol=1e-5)


def test_kan_synthesis_file_decodes_to_what_the_writer_measured():
    image = smooth_image(32, 48, seed=2)
    kind = adapters.ImageKind.load(image)
    config = EncodeConfig().with_options(bpp=3.0, model="grid", steps=60, seed=0)
    budget = kind.budget_bits(config)
    encoded = grid_codec.encode(
        kind, config, budget, torch.device("cpu"), spec_changes={"activation": KAN, "hidden": 4}
    )
    assert 8 * len(encoded.data) <= budget
    result = kancoin.decode(encoded.data)
    psnr = kancoin.signals.psnr(original=image, reconstruction=to_uint8(result) / 255.0)
    assert psnr == pytest.approx(encoded.psnr_quantized, abs=0.05)
    flat = np.broadcast_to(image.mean(axis=(0, 1)), image.shape)
    assert psnr > kancoin.signals.psnr(original=image, reconstruction=flat) + 3
    assert kancoin.decode(encoded.data, scale=2).shape == (64, 96, 3)


GOLDEN_KAN = REPO / "tests" / "data" / "golden" / "v1" / "grid-kan.inr"
# sha256 of its 8-bit decode at 1x: grid_codec.encode of smooth_image(32, 48) at 2 bpp, 80
# steps, spec_changes activation 3 (KAN), hidden 4, hidden_layers 1, context_hidden 4
GOLDEN_KAN_DECODED_SHA256 = "69bfb01b12e040488c8963ed33d3d4ee31ec2818272f44d27f8f706542c5e658"


def test_golden_kan_file_decodes_to_the_recorded_pixels():
    """The KAN synthesis' grid (G, k, r) is a constant of the format: changing it changes
    these pixels."""
    data = GOLDEN_KAN.read_bytes()
    header, _ = decoder.read_file(data)
    assert ACTIVATIONS[header.spec.activation] == "kan"
    decoded = to_uint8(kancoin.decode(data))
    assert hashlib.sha256(decoded.tobytes()).hexdigest() == GOLDEN_KAN_DECODED_SHA256
