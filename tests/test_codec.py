import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kancoin
from kancoin import bitstream
from kancoin.errors import InputError, LimitError, OutputError, RateError, UsageError
from kancoin.signals import psnr, to_uint8
from tests.conftest import smooth_image

FAST = {"steps": 60, "preset": "fast"}


@pytest.mark.parametrize("height,width", [(16, 16), (12, 21), (9, 31), (17, 7)])
def test_round_trip_at_several_sizes(height, width):
    image = smooth_image(height, width)
    result = kancoin.encode(image, bpp=10.0, **FAST)
    decoded = kancoin.decode(result.data)
    assert decoded.shape == image.shape
    # the reported PSNR is that of the 8-bit decoded image from the real bytes
    measured = psnr(original=image, reconstruction=to_uint8(decoded).astype(np.float32) / 255)
    assert measured == pytest.approx(result.psnr, abs=1e-9)
    assert result.header.psnr == pytest.approx(result.psnr, abs=0.006)
    flat = np.broadcast_to(image.mean(axis=(0, 1)), image.shape)
    assert result.psnr > psnr(original=image, reconstruction=flat) + 1  # it learnt something
    assert result.psnr_float - result.psnr < 0.3  # and quantization cost little


@given(
    bpp=st.floats(6.0, 16.0),
    height=st.integers(12, 24),
    width=st.integers(12, 24),
)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_file_never_exceeds_the_target_rate(bpp, height, width):
    image = smooth_image(height, width, seed=height * width)
    result = kancoin.encode(image, bpp=bpp, steps=3, preset="fast")
    bits = 8 * len(result.data)
    assert bits <= bpp * height * width
    assert result.bpp == pytest.approx(bits / (height * width))


def test_rate_uses_most_of_the_budget():
    image = smooth_image(32, 32)
    result = kancoin.encode(image, bpp=3.0, steps=10, preset="fast")
    assert 0.8 * 3.0 <= result.bpp <= 3.0


def test_budget_below_the_header_is_a_rate_error():
    with pytest.raises(RateError, match="too small"):
        kancoin.encode(smooth_image(8, 8), bpp=4.0, steps=2)


def test_decode_at_scale_and_size():
    data = kancoin.encode(smooth_image(10, 14), bpp=12.0, **FAST).data
    assert kancoin.decode(data, scale=2).shape == (20, 28, 3)
    assert kancoin.decode(data, size=(33, 7)).shape == (7, 33, 3)
    assert kancoin.decode(data, scale=0.5).shape == (5, 7, 3)
    with pytest.raises(UsageError):
        kancoin.decode(data, scale=2, size=(4, 4))
    with pytest.raises(LimitError):
        kancoin.decode(data, scale=100, max_pixels=1000)


def test_upscaled_render_agrees_with_native_on_average():
    data = kancoin.encode(smooth_image(12, 12), bpp=12.0, **FAST).data
    native, double = kancoin.decode(data), kancoin.decode(data, scale=2)
    pooled = double.reshape(12, 2, 12, 2, 3).mean(axis=(1, 3))
    assert np.abs(pooled - native).mean() < 0.03  # 2-3 % of the range between pixels


def test_same_seed_same_bytes_other_seed_other_bytes():
    image = smooth_image(10, 10)
    a = kancoin.encode(image, bpp=12.0, steps=5, seed=3).data
    b = kancoin.encode(image, bpp=12.0, steps=5, seed=3).data
    c = kancoin.encode(image, bpp=12.0, steps=5, seed=4).data
    assert a == b and a != c


def test_fixed_bit_depth_and_explicit_architecture():
    image = smooth_image(12, 12)
    result = kancoin.encode(image, bpp=None, bits=6, layers=2, width=6, steps=5)
    assert result.header.spec.layers == 2 and result.header.spec.width == 6
    assert max(result.bit_depths()) <= 6


def test_auto_bits_without_rate_costs_little_quality():
    result = kancoin.encode(smooth_image(16, 16), bpp=None, layers=2, width=10, steps=40)
    assert result.psnr_float - result.psnr_quantized < 0.5


def test_grayscale_and_alpha_images():
    gray = kancoin.encode(smooth_image(8, 12, channels=1), bpp=10.0, **FAST)
    assert kancoin.decode(gray.data).shape == (8, 12, 1)
    rgba = kancoin.encode(smooth_image(8, 12, channels=4), bpp=16.0, **FAST)
    assert kancoin.decode(rgba.data).shape == (8, 12, 4)


def test_files_and_paths(image_file, tmp_path):
    source = image_file(12, 16)
    out = tmp_path / "x.inr"
    result = kancoin.encode(source, out, bpp=10.0, **FAST)
    assert out.read_bytes() == result.data
    with pytest.raises(OutputError, match="already exists"):
        kancoin.encode(source, out, bpp=10.0, **FAST)
    kancoin.encode(source, out, bpp=10.0, force=True, **FAST)
    with pytest.raises(OutputError, match="input"):
        kancoin.encode(source, source, bpp=10.0, force=True, **FAST)
    png = tmp_path / "x.png"
    kancoin.decode(out, png)
    assert png.is_file() and not list(tmp_path.glob(".*tmp*"))
    header, _ = kancoin.read_file(out)
    assert header.signal.width == 16


def test_bad_arrays_and_options():
    with pytest.raises(InputError):
        kancoin.encode(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(InputError):
        kancoin.encode(np.full((4, 4, 3), 2.0, np.float32))
    with pytest.raises(UsageError):
        kancoin.encode(smooth_image(4, 4), bits=1)
    with pytest.raises(UsageError):
        kancoin.encode(smooth_image(4, 4), layers=3)
    for warmup in (-0.1, 1.0):
        with pytest.raises(UsageError, match="warmup must be in"):
            kancoin.encode(smooth_image(4, 4), warmup=warmup)


def test_header_records_model_and_shape():
    result = kancoin.encode(smooth_image(9, 13), bpp=12.0, **FAST)
    header, _ = bitstream.read(result.data)
    assert (header.signal.height, header.signal.width, header.signal.channels) == (9, 13, 3)
    assert header.spec == result.header.spec
    assert result.summary()["params"] == header.spec.num_params()


def test_batch_fraction_policy():
    from kancoin.adapters import MIN_IMAGE_BATCH, AudioKind, ImageKind
    from kancoin.config import EncodeConfig
    from kancoin.fit import SamplerOptions
    from kancoin.models import KanSpec, SirenSpec
    from kancoin.plan import batch_fraction
    from kancoin.presets import get_preset
    from kancoin.signals import ImageInfo

    preset = get_preset("default")
    kodak = ImageKind(ImageInfo(height=512, width=768, channels=3))
    small = ImageKind(ImageInfo(height=64, width=64, channels=3))
    siren = SirenSpec(in_features=2, out_features=3, layers=2, width=8)
    kan = KanSpec(in_features=2, out_features=3, layers=2, width=8)
    config = EncodeConfig()
    assert batch_fraction(kodak, config, preset, siren) == preset.batch_fraction
    assert batch_fraction(small, config, preset, siren) * 64 * 64 >= MIN_IMAGE_BATCH
    assert batch_fraction(kodak, config, preset, kan) == KanSpec.batch_fraction
    assert batch_fraction(kodak, config, preset, siren) < KanSpec.batch_fraction
    paper = EncodeConfig.of(sampler="nint", sampler_options=SamplerOptions(nint_mode="paper"))
    assert batch_fraction(kodak, paper, preset, siren) == 0.2
    assert batch_fraction(kodak, EncodeConfig.of(batch_fraction=0.5), preset, kan) == 0.5
    audio_fraction = AudioKind.batch_fraction(None, siren, preset)
    assert audio_fraction == 0.2
    # the same coordinate passes whatever the fraction
    assert preset.steps_at(0.2) * 0.2 == pytest.approx(preset.steps * preset.batch_fraction)
