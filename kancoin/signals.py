"""Signal I/O and coordinate grids: everything that touches pixels on disk lives here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from kancoin.errors import InputError, LimitError
from kancoin.fields import HeaderField
from kancoin.signal_info import SignalInfo


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

    16-bit PNGs and other high-depth modes are refused: we would silently lose their
    precision on output, and the codec promises not to lose data silently.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if img.width * img.height > MAX_INPUT_PIXELS:
                raise InputError(f"{path}: {img.width}x{img.height} is larger than we encode")
            if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
                raise InputError(
                    f"{path}: {mode} images (16-bit or float) are not supported; "
                    "convert to 8 bits per channel first"
                )
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
        raise InputError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return array.astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round a float image in [0, 1] to 8 bits, the way every decoded image is measured."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def image_to_pil(image: np.ndarray) -> Image.Image:
    """Float HxWxC image in [0, 1] -> Pillow image, 8 bits per channel."""
    pixels = to_uint8(image)
    channels = pixels.shape[2]
    if channels == 1:
        return Image.fromarray(pixels[:, :, 0], mode="L")
    return Image.fromarray(pixels, mode={3: "RGB", 4: "RGBA"}[channels])


def image_grid(height: int, width: int) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1]^2, each axis normalised by its own length.

    Row-major (y, x) order, shape (H*W, 2). Pixel centres of any resolution cover the same
    continuous square, so rendering at another size samples the same function.
    """
    ys = _axis(height)
    xs = _axis(width)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2)


def _axis(n: int) -> torch.Tensor:
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
