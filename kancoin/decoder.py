"""The decoder: .inr bytes -> parsed header -> rebuilt networks -> rendered signal.

Rendering works at any output size (images: --scale or --size; audio: any sample rate),
because every network is a function of continuous coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kancoin import adapters, bitstream, entropy
from kancoin.bitstream import Header
from kancoin.device import resolve_device
from kancoin.errors import InputError, LimitError
from kancoin.fileio import check_output, write_atomic
from kancoin.quant import dequantize

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold


def load_models(header: Header, payload: bytes, device: torch.device) -> list[torch.nn.Module]:
    """Rebuild every network of a parsed file from its header and payload."""
    own = header.spec.own_codec()
    if own is not None:  # a family that codes its own payload (kancoin.grid_codec)
        return own.load_models(header, payload, device)
    counts = header.tensor_counts()
    ints = iter(
        entropy.decode(payload, list(zip(counts, (t.entropy for t in header.tensors), strict=True)))
    )
    codings = iter(header.tensors)
    models = []
    for _ in range(header.networks):
        model = header.spec.build()
        with torch.no_grad():
            for tensor in model.coded_tensors():
                values, coding = next(ints), next(codings)
                tensor.copy_(
                    torch.from_numpy(dequantize(values, coding.step_index)).reshape(tensor.shape)
                )
        models.append(model.to(device).eval())
    return models


def read_file(source) -> tuple[Header, bytes]:
    """Parse .inr bytes or a path to one."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        size = path.stat().st_size
        if size > 1 << 30:
            raise LimitError(f"{path}: {size} bytes is far larger than any .inr we write")
        source = path.read_bytes()
    return bitstream.read(bytes(source))


def default_suffix(header: Header) -> str:
    """What `kancoin decode` writes when no output is named: .png or .wav."""
    return adapters.for_header(header).default_suffix


def decode(
    source,
    output: str | Path | None = None,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    rate: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    device: str = "auto",
    force: bool = False,
) -> np.ndarray:
    """Render a .inr (bytes or path); save it if output is given.

    Images: float32 HxWxC in [0, 1], at `scale` or `size`. Audio: float32 frames x channels
    in [-1, 1] over the clip's duration, at `scale` times its sample rate or at `rate` Hz;
    `max_pixels` caps the output frames.
    """
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
    header, payload = read_file(source)
    kind = adapters.for_header(header)
    if output is not None:
        kind.check_format(output)
    target = kind.output_size(scale=scale, size=size, rate=rate, max_samples=max_pixels)
    torch_device = resolve_device(device)
    signal = kind.render(load_models(header, payload, torch_device), target, torch_device)
    if output is not None:
        write_atomic(output, lambda path: kind.save(path, signal, target))
    return signal


def describe_decoded(header: Header, signal: np.ndarray, *, scale=None, rate=None) -> str:
    """One line on what decode produced: WxH for images, frames and rate for audio."""
    return adapters.for_header(header).describe_output(signal, scale=scale, rate=rate)
