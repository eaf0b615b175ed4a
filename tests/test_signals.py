import numpy as np
import pytest
import torch
from PIL import Image

from kancoin.errors import InputError, LimitError
from kancoin.signals import (
    check_output_pixels,
    image_grid,
    image_to_pil,
    load_image,
    psnr,
    to_uint8,
)


def test_rgb_round_trip_through_uint8(image_file):
    path = image_file(10, 7)
    image = load_image(path)
    assert image.shape == (10, 7, 3) and image.dtype == np.float32
    assert np.array_equal(np.asarray(Image.open(path)), to_uint8(image))


def test_grayscale_is_one_channel(image_file):
    assert load_image(image_file(5, 6, channels=1)).shape == (5, 6, 1)


def test_alpha_refused_unless_kept(image_file):
    path = image_file(4, 4, channels=4)
    with pytest.raises(InputError, match="alpha"):
        load_image(path)
    assert load_image(path, keep_alpha=True).shape == (4, 4, 4)


def test_sixteen_bit_png_refused(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(path)
    with pytest.raises(InputError, match="16-bit"):
        load_image(path)


def test_not_an_image_and_missing(tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("hello")
    with pytest.raises(InputError, match="not an image"):
        load_image(bogus)
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "absent.png")


def test_jpeg_loads(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(path, quality=95)
    assert load_image(path).shape == (8, 8, 3)


@pytest.mark.parametrize("height,width", [(1, 1), (3, 5), (16, 9), (7, 7)])
def test_grid_normalises_each_axis_by_its_own_length(height, width):
    grid = image_grid(height, width).reshape(height, width, 2)
    assert torch.all(grid.abs() < 1)
    # symmetric about the centre on both axes, whatever the aspect ratio
    assert torch.allclose(grid[:, :, 0], -grid.flip(0)[:, :, 0], atol=1e-6)
    assert torch.allclose(grid[:, :, 1], -grid.flip(1)[:, :, 1], atol=1e-6)
    if width > 1:
        assert grid[0, -1, 1] == pytest.approx(1 - 1 / width)


def test_grid_at_double_resolution_samples_the_same_square():
    coarse, fine = image_grid(4, 6).reshape(4, 6, 2), image_grid(8, 12).reshape(8, 12, 2)
    # each coarse pixel centre is the mean of its four fine sub-pixel centres
    pooled = fine.reshape(4, 2, 6, 2, 2).mean(dim=(1, 3))
    assert torch.allclose(coarse, pooled, atol=1e-6)


def test_psnr_keyword_only_and_values():
    a = np.zeros((2, 2, 3), np.float32)
    b = np.full((2, 2, 3), 0.1, np.float32)
    assert psnr(original=a, reconstruction=b) == pytest.approx(20.0)
    assert psnr(original=a, reconstruction=a) == float("inf")
    with pytest.raises(TypeError):
        psnr(a, b)  # type: ignore[misc]


def test_output_pixel_cap():
    check_output_pixels(100, 100, 10_000)
    with pytest.raises(LimitError, match="--max-pixels"):
        check_output_pixels(101, 100, 10_000)


def test_image_to_pil_modes():
    assert image_to_pil(np.zeros((2, 3, 1), np.float32)).mode == "L"
    assert image_to_pil(np.zeros((2, 3, 4), np.float32)).mode == "RGBA"
