"""Issue 17: what a new user of a codec expects (README flow, photos, pipes, batches...)."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

import kancoin
from kancoin.cli import main
from kancoin.errors import InputError, OutputError, UsageError
from kancoin.signals import load_image

FAST = ["--steps", "5", "--preset", "fast"]


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def png_16bit(path, pixels: np.ndarray) -> None:
    """A 16-bit PNG written by hand: Pillow cannot write 16-bit RGB."""
    height, width, channels = pixels.shape
    colour = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# photo input


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, 0] = 255  # a marker in the stored top-left corner
    img = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=100)
    loaded = load_image(path)
    assert loaded.shape == (6, 4, 3)  # displayed upright: portrait
    assert loaded[0, -1].mean() > 0.5  # the marker moved to the top-right corner


def swapped_primaries_profile() -> bytes:
    """Pillow's sRGB profile with its red and blue primaries swapped: a valid RGB profile
    whose colours are far from sRGB's."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", data[128:132])
    entries = {}
    for i in range(count):
        at = 132 + 12 * i
        entries[bytes(data[at : at + 4])] = at
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red + 4 : red + 12], data[blue + 4 : blue + 12] = (
        data[blue + 4 : blue + 12],
        data[red + 4 : red + 12],
    )
    data[84:100] = bytes(16)  # profile ID: none
    return bytes(data)


def test_icc_profile_is_converted_to_srgb(tmp_path):
    pixels = np.full((4, 4, 3), (200, 60, 30), np.uint8)
    plain, srgb, swapped = tmp_path / "plain.png", tmp_path / "srgb.png", tmp_path / "swap.png"
    Image.fromarray(pixels).save(plain)
    srgb_bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(pixels).save(srgb, icc_profile=srgb_bytes)
    Image.fromarray(pixels).save(swapped, icc_profile=swapped_primaries_profile())
    assert np.abs(load_image(srgb) - load_image(plain)).max() <= 2 / 255
    converted = load_image(swapped)[0, 0] * 255
    assert converted[2] > converted[0]  # red stored under blue's primary: shown blue-ish


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_refused_the_same_for_grey_and_colour(tmp_path, channels):
    path = tmp_path / f"deep{channels}.png"
    png_16bit(path, np.full((4, 5, channels), 40000, np.uint16))
    with pytest.raises(InputError, match="16-bit images are not supported"):
        load_image(path)


def test_decompression_bomb_is_an_input_error(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("L", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is then a "bomb"
    with pytest.raises(InputError, match="too many pixels"):
        load_image(path)


def test_ogg_is_called_unsupported_audio(tmp_path):
    path = tmp_path / "song.ogg"
    path.write_bytes(b"OggS" + bytes(60))
    with pytest.raises(InputError, match="ogg audio is not supported"):
        load_image(path)
