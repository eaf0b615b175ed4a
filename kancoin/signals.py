"""Signal I/O and coordinate grids: everything that touches pixels on disk lives here."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from kancoin.errors import InputError, LimitError
from kancoin.fields import HeaderField
from kancoin.signal_info import SignalInfo

if TYPE_CHECKING:
    import torch  # imported where used: reading a header must not load torch


@dataclass(frozen=True)
class ImageInfo(SignalInfo):
    """An image of height x width pixels of `channels` channels, one network."""

    kind: ClassVar[int] = 1
    coord_dims: ClassVar[int] = 2
    header_fields: ClassVar[tuple[HeaderField, ...]] = (
        HeaderField("height", "uint:16", 1, 65535),
        HeaderField("width", "uint:16", 1, 65535),
        HeaderField("channels", "uint:3", 1, 4),
    )
    height: int
    width: int
    channels: int

    rate_unit: ClassVar[str] = "bpp"

    @property
    def samples(self) -> int:
        return self.height * self.width

    @property
    def networks(self) -> int:
        return 1

    def rate(self, bits: float) -> float:
        """Rate in `rate_unit`: bits per pixel."""
        return bits / self.samples

    def describe(self) -> str:
        return f"image {self.width}x{self.height}x{self.channels}"


# Images larger than this are refused on input; decoded outputs have their own cap.
MAX_INPUT_PIXELS = 1 << 26


def load_image(path: str | Path, *, keep_alpha: bool = False) -> np.ndarray:
    """Read an 8-bit image as float32 HxWxC in [0, 1] (C = 1, 3, or 4 with keep_alpha).

    As a viewer shows it: EXIF orientation applied, and colours with an embedded ICC
    profile converted to sRGB (the decoded PNG carries no profile, so sRGB is what any
    viewer assumes). Images of more than 8 bits per channel are refused, grey and colour
    alike (docs/CLI.md): the decoder writes 8 bits, and the codec promises not to lose
    precision silently.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_INPUT_PIXELS:  # before any pixel is decoded
                raise InputError(
                    f"{path}: {img.width}x{img.height} is larger than we encode "
                    f"({MAX_INPUT_PIXELS} pixels at most)"
                )
            depth = _bits_per_channel(img)
            if depth > 8:
                raise InputError(
                    f"{path}: {depth}-bit images are not supported (grey or colour); convert "
                    "to 8 bits per channel first, e.g. `magick in.png -depth 8 out.png`"
                )
            img.load()
            img = _as_displayed(img, path)
            mode = img.mode
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
                if not keep_alpha:
                    raise InputError(
                        f"{path}: image has an alpha channel; pass --alpha to code it as a "
                        "fourth channel, or flatten it first"
                    )
                img = img.convert("RGBA")
            elif mode in ("L", "1"):
                img = img.convert("L")
            else:
                img = img.convert("RGB")
            array = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        raise InputError(f"{path}: {_not_an_image(path)}") from None
    except Image.DecompressionBombError:
        raise InputError(
            f"{path}: too many pixels for an image we encode ({MAX_INPUT_PIXELS} at most)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return array.astype(np.float32) / 255.0


HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
AUDIO_ELSEWHERE = (".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".aiff", ".aif")


def _bits_per_channel(img: Image.Image) -> int:
    """Bits per channel as stored: Pillow opens a 16-bit RGB PNG as 8-bit "RGB", so the
    decoder's raw mode (e.g. "RGB;16B") is what tells."""
    if img.mode in HIGH_DEPTH_MODES or img.mode.startswith("I;16"):
        return 32 if img.mode in ("I", "F") else 16
    for tile in getattr(img, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and (";16" in rawmode or ";32" in rawmode):
            return 16 if ";16" in rawmode else 32
    return 8


def _as_displayed(img: Image.Image, path: Path) -> Image.Image:
    """EXIF orientation applied; an ICC profile's colours converted to sRGB."""
    img = ImageOps.exif_transpose(img) or img
    profile = img.info.get("icc_profile")
    if not profile or img.mode not in ("RGB", "RGBA", "L", "LA"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        target = ImageCms.createProfile("sRGB")
        if img.mode in ("L", "LA"):
            return img  # a grey profile only sets a tone curve; sRGB's is what we assume
        converted = ImageCms.profileToProfile(
            img, source, target, outputMode=img.mode, renderingIntent=0
        )
        return converted or img
    except (OSError, ValueError, ImageCms.PyCMSError) as exc:
        raise InputError(f"{path}: cannot convert its ICC colour profile to sRGB ({exc})") from None


def _not_an_image(path: Path) -> str:
    if path.suffix.lower() in AUDIO_ELSEWHERE:
        return (
            f"{path.suffix.lower().lstrip('.')} audio is not supported; kancoin reads WAV or "
            f"FLAC (e.g. `ffmpeg -i {path.name} {path.stem}.wav`)"
        )
    return "not an image Pillow can read (nor WAV/FLAC audio)"


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round a float image in [0, 1] to 8 bits, the way every decoded image is measured."""
    scaled = image * 255.0  # the one temporary: a 4608x3072 decode would hold three
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channels in file order


def image_to_pil(image: np.ndarray) -> Image.Image:
    """Float HxWxC image in [0, 1] -> Pillow image, 8 bits per channel (rows converted a
    block at a time: no full-size float temporaries)."""
    channels = image.shape[2]
    if channels not in PIL_MODES:
        raise ValueError(f"{channels}-channel images have no Pillow mode")
    pixels = np.empty(image.shape, dtype=np.uint8)
    rows = max(1, (1 << 20) // max(1, image.shape[1] * channels))
    for start in range(0, image.shape[0], rows):
        pixels[start : start + rows] = to_uint8(image[start : start + rows])
    if channels == 1:
        return Image.fromarray(pixels[:, :, 0], mode="L")
    return Image.fromarray(pixels, mode=PIL_MODES[channels])


def image_grid(height: int, width: int) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1]^2, each axis normalised by its own length.

    Row-major (y, x) order, shape (H*W, 2). Pixel centres of any resolution cover the same
    continuous square, so rendering at another size samples the same function.
    """
    ys = axis(height)
    xs = axis(width)
    import torch

    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2)


def axis(n: int) -> torch.Tensor:
    """Pixel-centre coordinates of one axis of n pixels (image_grid's, for bands of rows)."""
    return _axis(n)


def _axis(n: int) -> torch.Tensor:
    import torch

    if n == 1:
        return torch.zeros(1)
    # centres of n equal cells over [-1, 1]: symmetric, and resolution-independent
    return (torch.arange(n, dtype=torch.float32) + 0.5) * (2.0 / n) - 1.0


def psnr(*, original: np.ndarray, reconstruction: np.ndarray) -> float:
    """PSNR in dB of signals in [0, 1]; keyword-only so the two can never be swapped."""
    if original.shape != reconstruction.shape:
        raise ValueError(f"shape mismatch: {original.shape} vs {reconstruction.shape}")
    mse = float(np.mean((original.astype(np.float64) - reconstruction.astype(np.float64)) ** 2))
    return psnr_from_mse(mse)


def psnr_from_mse(mse: float) -> float:
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def check_output_pixels(width: int, height: int, max_pixels: int) -> None:
    """Refuse decodes larger than the cap before anything is allocated."""
    if width < 1 or height < 1:
        raise LimitError(f"output size {width}x{height} is empty")
    if width * height > max_pixels:
        raise LimitError(
            f"output of {width}x{height} = {width * height} pixels exceeds the limit of "
            f"{max_pixels}; raise it with --max-pixels if you mean it"
        )
