"""The codec: signal -> fitted network -> quantized, entropy-coded .inr bytes, and back.

`encode` runs the closed loop: after writing the bytes it decodes them with the decoder's
own code path and reports distortion of the 8-bit output and rate of the real bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from kancoin import allocation, bitstream, entropy, rate
from kancoin.bitstream import Header, ImageInfo, TensorCoding
from kancoin.device import resolve_device, set_threads
from kancoin.errors import InputError, LimitError, RateError, UsageError
from kancoin.fileio import check_output, write_atomic, write_bytes_atomic
from kancoin.fit import SAMPLERS, FitConfig, SamplerOptions, fit
from kancoin.fit.trainer import ProgressFn
from kancoin.models import ModelSpec, spec_class_by_name
from kancoin.presets import get_preset
from kancoin.quant import dequantize
from kancoin.render import render
from kancoin.signals import (
    check_output_pixels,
    image_grid,
    image_to_pil,
    load_image,
    psnr,
    psnr_from_mse,
    to_uint8,
)

DEFAULT_BPP = 0.3
AUTO_LOSS_DB = 0.1  # --bits auto without a rate: quantization may cost at most this much
ALLOCATION_PIXELS = 16384  # coordinates the bit allocation measures distortion on
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb threshold


@dataclass(frozen=True)
class EncodeConfig:
    bpp: float | None = DEFAULT_BPP
    bits: int | None = None  # None: automatic per-tensor allocation
    model: str = "siren"
    layers: int | None = None
    width: int | None = None
    preset: str = "default"
    steps: int | None = None  # overrides the preset's step count
    time_budget: float | None = None
    sampler: str = "uniform"
    sampler_options: SamplerOptions = field(default_factory=SamplerOptions)
    batch_fraction: float | None = None  # overrides the preset's share of coordinates per step
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    keep_alpha: bool = False

    def __post_init__(self) -> None:
        if self.bpp is not None and not 0 < self.bpp <= 64:
            raise UsageError(f"--bpp must be in (0, 64], got {self.bpp}")
        if self.bits is not None and not 2 <= self.bits <= 16:
            raise UsageError(f"--bits must be auto or 2..16, got {self.bits}")
        if (self.layers is None) != (self.width is None):
            raise UsageError("--layers and --width go together")
        if self.layers is not None and not (1 <= self.layers <= 63 and 1 <= self.width <= 4095):
            raise UsageError("--layers must be 1..63 and --width 1..4095")
        if self.steps is not None and self.steps < 1:
            raise UsageError("--steps must be at least 1")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UsageError("--time-budget must be positive")
        try:
            get_preset(self.preset)
            spec_class_by_name(self.model)
        except (ValueError, KeyError) as exc:
            raise UsageError(f"unknown model or preset: {exc}") from None
        if self.batch_fraction is not None and not 0 < self.batch_fraction <= 1:
            raise UsageError(f"batch fraction must be in (0, 1], got {self.batch_fraction}")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r} (have: {', '.join(SAMPLERS)})")


@dataclass
class EncodeResult:
    data: bytes
    header: Header
    psnr: float  # of the 8-bit decoded image, from the real bytes
    psnr_float: float  # of the float network before quantization
    psnr_quantized: float  # of the float render of the quantized network
    steps: int
    fit_seconds: float
    seconds: float
    device: str
    output: Path | None = None
    input: Path | None = None
    history: list = field(default_factory=list)

    @property
    def num_bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / self.header.signal.samples

    def bit_depths(self) -> list[int]:
        return [c.entropy.max_abs.bit_length() + 1 for c in self.header.tensors]

    def summary(self) -> dict:
        return {
            "input": str(self.input) if self.input else None,
            "output": str(self.output) if self.output else None,
            "bytes": self.num_bytes,
            "bpp": round(self.bpp, 6),
            "psnr": round(self.psnr, 4),
            "psnr_float": round(self.psnr_float, 4),
            "psnr_quantized": round(self.psnr_quantized, 4),
            "model": self.header.spec.describe(),
            "params": self.header.spec.num_params() * self.header.networks,
            "bits": self.bit_depths(),
            "mean_bits_per_param": round(
                8 * self.header.payload_words * 4 / max(1, self.header.spec.num_params()), 3
            ),
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "device": self.device,
            "signal": self.header.signal.describe(),
        }


def load_signal(source, *, keep_alpha: bool = False) -> np.ndarray:
    """Array (HxW, HxWxC; uint8 or float in [0, 1]) or path -> float32 HxWxC."""
    if isinstance(source, str | Path):
        return load_image(source, keep_alpha=keep_alpha)
    array = np.asarray(source)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise InputError(f"expected an HxW or HxWxC image with C in 1, 3, 4; got {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise InputError("float images must hold finite values in [0, 1]")
    return array


def encode(
    source,
    output: str | Path | None = None,
    *,
    config: EncodeConfig | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
    **options,
) -> EncodeResult:
    """Compress an image (array or path) to .inr bytes; write them to `output` if given.

    Keyword options are EncodeConfig fields (e.g. bpp=0.3, steps=300, model="siren").
    """
    started = time.perf_counter()
    config = replace(config or EncodeConfig(), **options)
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
    image = load_signal(source, keep_alpha=config.keep_alpha)
    height, width, channels = image.shape
    info = ImageInfo(height=height, width=width, channels=channels)
    preset = get_preset(config.preset)
    device = resolve_device(config.device)
    set_threads(config.threads)
    torch.manual_seed(config.seed)

    budget = None if config.bpp is None else config.bpp * info.samples
    spec = _choose_spec(config, info, preset, budget)
    model = spec.build().to(device)
    coords = image_grid(height, width).to(device)
    targets = torch.from_numpy(image.reshape(-1, channels)).to(device)

    fit_config = FitConfig(
        steps=config.steps
        if config.steps is not None
        else (None if config.time_budget is not None else preset.steps),
        time_budget=config.time_budget,
        lr=preset.lr,
        sampler=config.sampler,
        sampler_options=config.sampler_options,
        batch_fraction=config.batch_fraction or preset.batch_fraction,
        seed=config.seed,
    )
    fitted = fit(model, coords, targets, fit_config, progress=progress)

    data, payload, psnr_quantized = _quantize_and_write(
        model, spec, info, config, budget, coords, targets
    )
    # closed loop: the decoder's own path on the real bytes, measured on 8-bit output
    header, _ = bitstream.read(data)
    decoded = decode(data, device=str(device))
    measured = psnr(original=image, reconstruction=to_uint8(decoded).astype(np.float32) / 255)
    data = bitstream.write(replace(header, psnr=measured), payload)  # same size: field reserved
    if output is not None:
        write_bytes_atomic(output, data)
    return EncodeResult(
        data=data,
        header=bitstream.read(data)[0],
        psnr=measured,
        psnr_float=fitted.psnr,
        psnr_quantized=psnr_quantized,
        steps=fitted.steps,
        fit_seconds=fitted.seconds,
        seconds=time.perf_counter() - started,
        device=str(device),
        output=Path(output) if output is not None else None,
        input=Path(source) if isinstance(source, str | Path) else None,
        history=fitted.history,
    )


def _choose_spec(config: EncodeConfig, info: ImageInfo, preset, budget: float | None) -> ModelSpec:
    base = spec_class_by_name(config.model)(in_features=2, out_features=info.channels)
    if config.layers is not None:
        return base.replace(layers=config.layers, width=config.width)
    if budget is None:
        return base
    bits_per_param = float(config.bits) if config.bits else rate.BITS_PER_PARAM[config.model]
    return rate.plan(
        base, info, budget, max_layers=preset.max_layers, bits_per_param=bits_per_param
    )


def _quantize_and_write(model, spec, info, config, budget, coords, targets):
    """Choose steps per tensor, write the file, and coarsen until it fits the budget."""
    generator = torch.Generator().manual_seed(config.seed)
    count = min(ALLOCATION_PIXELS, coords.shape[0])
    subset = torch.randperm(coords.shape[0], generator=generator)[:count].to(coords.device)
    sub_coords, sub_targets = coords[subset], targets[subset]
    max_bits = config.bits or allocation.MAX_BITS
    base_mse, table = allocation.candidate_table(model, sub_coords, sub_targets, max_bits=max_bits)
    fixed = rate.header_bits(spec, info) + rate.PAYLOAD_SLACK_BITS
    if budget is not None:
        chosen = allocation.for_rate(table, budget - fixed)
        if chosen is not None:
            chosen = allocation.fill(table, chosen, budget - fixed)
        if chosen is None:
            raise RateError(
                f"{spec.describe()} cannot be coded in {budget:.0f} bits even at "
                f"{allocation.MIN_BITS} bits per weight; lower --layers/--width or raise --bpp"
            )
    elif config.bits is not None:
        chosen = allocation.pick(table, 0.0)  # finest allowed = the requested depth
    else:
        chosen = allocation.for_distortion(table, base_mse, AUTO_LOSS_DB)
    while True:
        data, payload = _write(chosen, spec, info)
        if budget is None or 8 * len(data) <= budget:
            break
        chosen = allocation.coarser(table, chosen)
        if chosen is None:
            raise RateError(f"cannot fit {spec.describe()} in {budget:.0f} bits")
    allocation.load_quantized(model, chosen)
    prediction = render(model, coords).clamp_(0, 1)
    return data, payload, psnr_from_mse(float((prediction - targets).pow(2).mean()))


def _write(chosen: allocation.Allocation, spec: ModelSpec, info: ImageInfo):
    """File bytes and payload; the PSNR field is reserved now and filled after decoding."""
    codings = tuple(TensorCoding(c.step_index, c.entropy) for c in chosen.choices)
    payload = entropy.encode([(c.ints, c.entropy) for c in chosen.choices])
    header = Header(signal=info, spec=spec, networks=1, tensors=codings, psnr=0.0)
    return bitstream.write(header, payload), payload


def load_model(header: Header, payload: bytes, device: torch.device) -> torch.nn.Module:
    """Rebuild the network from a parsed header and its payload."""
    counts = header.tensor_counts()
    ints = entropy.decode(
        payload, list(zip(counts, (t.entropy for t in header.tensors), strict=True))
    )
    model = header.spec.build()
    with torch.no_grad():
        for tensor, values, coding in zip(model.coded_tensors(), ints, header.tensors, strict=True):
            tensor.copy_(
                torch.from_numpy(dequantize(values, coding.step_index)).reshape(tensor.shape)
            )
    return model.to(device).eval()


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


def output_size(
    header: Header, *, scale: float | None, size: tuple[int, int] | None, max_pixels: int
) -> tuple[int, int]:
    """(width, height) to render, checked against the cap before any allocation."""
    signal = header.signal
    if scale is not None and size is not None:
        raise UsageError("give --scale or --size, not both")
    if size is not None:
        width, height = size
    elif scale is not None:
        if not 0 < scale <= 1024:
            raise UsageError(f"--scale must be in (0, 1024], got {scale}")
        width, height = max(1, round(signal.width * scale)), max(1, round(signal.height * scale))
    else:
        width, height = signal.width, signal.height
    check_output_pixels(width, height, max_pixels)
    return width, height


def decode(
    source,
    output: str | Path | None = None,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    device: str = "auto",
    force: bool = False,
) -> np.ndarray:
    """Render a .inr (bytes or path) as float32 HxWxC in [0, 1]; save it if output is given."""
    if output is not None:
        inputs = (source,) if isinstance(source, str | Path) else ()
        output = check_output(output, inputs=inputs, force=force)
        image_format = _image_format(output)
    header, payload = read_file(source)
    width, height = output_size(header, scale=scale, size=size, max_pixels=max_pixels)
    torch_device = resolve_device(device)
    model = load_model(header, payload, torch_device)
    coords = image_grid(height, width).to(torch_device)
    pixels = render(model, coords).clamp_(0.0, 1.0)
    image = pixels.reshape(height, width, header.signal.channels).cpu().numpy()
    if output is not None:
        pil = image_to_pil(image)
        write_atomic(output, lambda path: pil.save(path, format=image_format))
    return image


def _image_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    formats = {
        ".png": "PNG",
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".bmp": "BMP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
        ".ppm": "PPM",
        ".webp": "WEBP",
    }
    if suffix not in formats:
        raise UsageError(f"cannot tell the image format from {path.name!r}; use .png")
    return formats[suffix]
