"""The decoder: .inr bytes -> parsed header -> rebuilt networks -> rendered signal.

Rendering works at any output size (images: --scale or --size; audio: any sample rate),
because every network is a function of continuous coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kancoin import adapters, bitstream, entropy
from kancoin import budget as decode_budget
from kancoin import prior as priors
from kancoin.bitstream import Header
from kancoin.errors import FormatError, InputError, LimitError, OutputError
from kancoin.fileio import check_output, write_atomic
from kancoin.quant import dequantize

if TYPE_CHECKING:
    import torch  # imported once a decode is within its budget: refusing one needs no torch

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold
DEFAULT_LOSSY_QUALITY = adapters.DEFAULT_LOSSY_QUALITY  # decoding to .jpg/.webp
RECORDED_PSNR_MAX = 655.35  # the header's PSNR field saturates here: an exact decode
DECODED_TAG = ".decoded"  # decode's default output: NAME.decoded.png, never the original


def load_models(header: Header, payload: bytes, device: torch.device, prior=None) -> NetworkLoader:
    """Every network of a parsed file: the payload is decoded (and checked) now, each
    network built from its integers when it is used, so only one is held at a time.

    A version 2 file's first layers come from its cohort prior: `prior` (a Prior, a name
    or a path), else the one the search path holds (kancoin.prior.for_ref)."""
    own = header.spec.own_codec()
    if own is not None:  # a family that codes its own payload (kancoin.grid_codec)
        return own.load_models(header, payload, device)
    frozen: list[np.ndarray] = []
    if header.prior is not None:
        found = priors.for_ref(header.prior, prior)
        priors.check_fits(found, header.spec, header.prior.freeze)
        frozen = found.frozen_tensors(header.prior.freeze)
    counts = header.tensor_counts()
    ints = entropy.decode(
        payload, list(zip(counts, (t.entropy for t in header.tensors), strict=True))
    )
    return NetworkLoader(header, ints, device, frozen)


class NetworkLoader(Sequence):
    """A file's networks by index (a Sequence), each built on access from its integers."""

    def __init__(
        self,
        header: Header,
        ints: list[np.ndarray],
        device: torch.device,
        frozen: list[np.ndarray] | None = None,
    ):
        self.header = header
        self.ints = ints
        self.device = device
        self.per_network = len(header.coded_shapes())
        self.frozen = frozen or []  # a prior's layers, the same in every network

    def __len__(self) -> int:
        return self.header.networks

    def __getitem__(self, index: int) -> torch.nn.Module:
        import torch

        if not 0 <= index < len(self):
            raise IndexError(index)
        first = index * self.per_network
        model = self.header.spec.build()
        with torch.no_grad():
            if self.frozen:
                for tensor, values in zip(model.all_tensors(), self.frozen, strict=False):
                    tensor.copy_(torch.from_numpy(values))
                model.freeze(len(self.frozen) // 2)
            for offset, tensor in enumerate(model.coded_tensors()):
                values = self.ints[first + offset]
                coding = self.header.tensors[first + offset]
                tensor.copy_(
                    torch.from_numpy(dequantize(values, coding.step_index)).reshape(tensor.shape)
                )
        return model.to(self.device).eval()


def read_file(source) -> tuple[Header, bytes]:
    """Parse .inr bytes or a path to one; errors about a file name it."""
    if not isinstance(source, str | Path):
        return bitstream.read(bytes(source))
    path = Path(source)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a .inr file")
    if not path.is_file():
        raise InputError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    size = path.stat().st_size
    if size > 1 << 30:
        raise LimitError(f"{path}: {size} bytes is far larger than any .inr we write")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return bitstream.read(data)
    except FormatError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def default_suffix(header: Header) -> str:
    """What `kancoin decode` writes when no output is named: .png or .wav."""
    return adapters.for_header(header).default_suffix


def default_decode_path(source: str | Path, header: Header) -> Path:
    """NAME.decoded.png (or .wav) beside NAME.inr: a name `kancoin encode` never reads
    from by default, so following the README cannot overwrite the original."""
    source = Path(source)
    return source.with_name(source.stem + DECODED_TAG + default_suffix(header))


def _refuse_the_original(source, output: Path, header: Header) -> None:
    """--force still never overwrites the file a .inr was (by its name) made from: NAME.*
    beside NAME.inr holding a signal of the header's size. Whoever means it deletes it."""
    if not isinstance(source, str | Path) or not output.exists():
        return
    source = Path(source)
    if output.parent.resolve() != source.parent.resolve() or output.stem != source.stem:
        return
    if adapters.for_header(header).matches_file(output):
        raise OutputError(
            f"{output}: looks like the original {source.name} was encoded from (same name "
            "and size beside it); kancoin never overwrites it, even with --force: choose "
            "another name"
        )


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
    quality: int | None = None,
    max_work: float = decode_budget.DEFAULT_MAX_WORK,
    max_memory: int = decode_budget.DEFAULT_MAX_MEMORY,
    prior=None,
) -> np.ndarray:
    """Render a .inr (bytes or path); save it if output is given.

    Images: float32 HxWxC in [0, 1], at `scale` or `size`. Audio: float32 frames x channels
    in [-1, 1] over the clip's duration, at `scale` times its sample rate or at `rate` Hz;
    `max_pixels` caps the output frames. The decode budget (`max_work` multiply-adds,
    `max_memory` bytes; kancoin.budget) is checked before anything is decoded. A file coded
    with a cohort prior needs it: `prior` (a Prior, name or path) or the search path's.
    """
    limits = decode_budget.DecodeBudget(max_work=max_work, max_memory=max_memory)
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
    header, payload = read_file(source)
    if header.prior is not None:  # a missing prior fails before any work
        prior = priors.for_ref(header.prior, prior)
        priors.check_fits(prior, header.spec, header.prior.freeze)
    kind = adapters.for_header(header)
    target = kind.output_size(scale=scale, size=size, rate=rate, max_samples=max_pixels)
    if output is not None:
        kind.check_format(output, target, quality=quality)
        _refuse_the_original(source, output, header)
    cost = decode_budget.estimate(
        header,
        kind.output_samples(target),
        header.signal.channels,
        writer_bytes=kind.writer_bytes() if output is not None else 0,
        file_bytes=len(payload),
    )
    decode_budget.check(cost, limits)
    from kancoin.device import resolve_device

    torch_device = resolve_device(device)
    signal = kind.render(load_models(header, payload, torch_device, prior), target, torch_device)
    if output is not None:
        write_atomic(output, lambda path: kind.save(path, signal, target, quality=quality))
    return signal


def describe_decoded(
    header: Header, signal: np.ndarray, *, scale=None, rate=None, output=None, quality=None
) -> str:
    """One line on what decode produced: WxH for images (and a lossy format's quality),
    frames and rate for audio."""
    kind = adapters.for_header(header)
    line = kind.describe_output(signal, scale=scale, rate=rate)
    if output is not None and adapters.is_lossy_image(output):
        line += f", quality {quality or DEFAULT_LOSSY_QUALITY} (--quality)"
    return line
