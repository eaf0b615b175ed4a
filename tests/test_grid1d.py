"""The 1-D latent grid for sound (model id 20): one model per clip, any output rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kancoin
from kancoin import bitstream, grid1d_codec
from kancoin.errors import UsageError
from kancoin.models import spec_class
from kancoin.models.grid import GridModel
from kancoin.models.grid1d import Grid1DSpec


def tone(frames: int = 4000, rate: int = 16000) -> np.ndarray:
    t = np.arange(frames) / rate
    wave = 0.4 * np.sin(2 * np.pi * 300 * t) + 0.1 * np.sin(2 * np.pi * 1700 * t)
    return wave.astype(np.float32)[:, None]


@pytest.mark.parametrize("width", [1000, 1001, 37])
def test_one_dimensional_upsampling_is_what_the_decoder_reads(width):
    """Training's 1-D cubic upsampling agrees with the parent's 2-D one and with the
    decoder's reading at the frames' times (grid_sample), the path files are measured on."""
    torch.manual_seed(0)
    model = Grid1DSpec(in_features=1, out_features=1, height=1, width=width, levels=8).build()
    for level in model.latents:
        level.data.normal_()
    levels = list(model.latents)
    fast = model.upsample_full(levels)
    assert fast.shape == (width, 8)
    assert torch.allclose(fast, GridModel.upsample_full(model, levels), atol=2e-4)
    times = (torch.arange(width, dtype=torch.float64) * 2 / width - 1).float()[:, None]
    assert torch.allclose(model(times), model.synthesize(fast), atol=1e-4)


def test_encode_decode_round_trip_one_network_at_any_rate(tmp_path):
    clip = tone()
    path = tmp_path / "t.inr"
    result = kancoin.encode(
        clip, path, sample_rate=16000, kbps=64, model="grid1d", steps=30, threads=1
    )
    data = path.read_bytes()
    assert 8 * len(data) <= 64_000 * 0.25  # the budget of 0.25 s at 64 kbps
    header, _ = bitstream.read(data)
    assert spec_class(20) is Grid1DSpec and isinstance(header.spec, Grid1DSpec)
    assert header.networks == 1 and header.signal.segment_frames == header.signal.frames
    assert header.spec.width == 4000 and header.spec.height == 1
    decoded = kancoin.decode(data)
    assert decoded.shape == (4000, 1) and result.psnr > 20  # a constant scores 16.7 dB
    double = kancoin.decode(data, rate=32000)
    assert double.shape == (8000, 1)
    # every other sample at twice the rate is an original sample time
    assert np.abs(double[::2] - decoded).max() < 1e-4
    again = kancoin.encode(clip, sample_rate=16000, kbps=64, model="grid1d", steps=30, threads=1)
    assert again.data == data  # seeded: the same file each run


def test_grid1d_codes_audio_only_and_the_image_grid_images_only():
    image = np.full((16, 16, 3), 0.5, dtype=np.float32)
    with pytest.raises(UsageError, match="codes audio only"):
        kancoin.encode(image, bpp=4.0, model="grid1d", steps=2)
    with pytest.raises(UsageError, match="codes images only"):
        kancoin.encode(tone(), sample_rate=16000, kbps=64, model="grid", steps=2)


def test_base_spec_levels_follow_the_clip_length():
    class Shape:
        layers = None
        width = None

    class Config:
        model = Shape()

    info = type("Info", (), {"frames": 100, "channels": 2})()
    spec = grid1d_codec.base_spec(Config(), info)
    assert spec.levels == 8 and spec.out_features == 2 and spec.in_features == 1
    assert spec.level_shapes()[-1] == (1, 1)


def test_a_grid1d_file_uses_most_of_its_budget():
    """The product bar: at most --kbps, and at least 90 % of it (docs/AUDIO.md: soft
    rounding left a third of the budget unused)."""
    clip = tone(8000)  # 0.5 s
    rng = np.random.default_rng(0)
    clip = clip + 0.02 * rng.standard_normal(clip.shape).astype(np.float32)  # detail to code
    result = kancoin.encode(clip, sample_rate=16000, kbps=32, model="grid1d", steps=40, threads=1)
    budget = 32_000 * 0.5
    assert 0.9 * budget <= 8 * len(result.data) <= budget
