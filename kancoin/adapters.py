"""What the codec loop needs to know about each kind of signal.

The loop in codec.py is the same for every kind: fit one network per part, allocate bits
over all of them at once, write, decode the bytes, measure. An adapter supplies the pieces
that differ: loading, the rate unit, each part's coordinates and [0, 1] targets, model
defaults, rendering the networks at an output size, saving and measuring the result.
Images are one part; audio is one part per time segment (docs/AUDIO.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kancoin import audio, signals
from kancoin.bitstream import AudioInfo, Header, ImageInfo
from kancoin.errors import InputError, LimitError, UsageError
from kancoin.models import ModelSpec, spec_class_by_name
from kancoin.presets import Preset
from kancoin.render import render

IMAGE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".ppm": "PPM",
    ".webp": "WEBP",
}

# Audio choices, measured in docs/AUDIO.md (float PSNR after 300 steps on the shared clips).
SEGMENT_BITS = 8000  # a segment per 8 kbit of budget: 0.5 s at 16 kbps, 0.125 s at 64
SEGMENT_SECONDS_RANGE = (0.0625, 2.0)
SEGMENT_SECONDS = 0.5  # without a rate target
MAX_SEGMENT_FRAMES = 1 << 22  # float32 time coordinates stay ~8 ulps apart
W0_FIRST_AT_HALF_SECOND = 470.0  # first-layer w0; scales with sqrt(segment duration)
AUDIO_MAX_LAYERS = 3  # 3 sine layers beat 2 and 5 at equal parameters
# a step trains on at least one fast-step chunk of pixels: fewer make noisy steps whose fixed
# costs dominate (a 256x256 image trains on 6 %, a Kodak image on the preset's 2.5 %)
MIN_IMAGE_BATCH = 4096
AUDIO_BATCH_FRACTION = 0.2  # segments are short: small batches would be a few hundred frames
AUDIO_BITS_PER_PARAM = 8.0  # audio was measured at 8 (docs/AUDIO.md); 7 is not
ALLOCATION_SAMPLES = 2048  # per segment: the allocation's cost, not the fit's, dominated


class DefaultRate(float):
    """A rate nobody asked for (the default); only an explicit rate of the wrong unit is
    an error, e.g. --bpp on audio."""


@dataclass(frozen=True)
class Part:
    coords: torch.Tensor
    targets: torch.Tensor  # in [0, 1]
    weight: float  # share of the signal's samples, so part MSEs add up to the signal's


def _explicit(rate) -> bool:
    return rate is not None and not isinstance(rate, DefaultRate)


def _spec(config, info, in_features: int, w0_first: float | None) -> ModelSpec:
    """The model family's defaults for this signal; w0_first only where the family has it."""
    spec = spec_class_by_name(config.model)(in_features=in_features, out_features=info.channels)
    w0_first = config.w0_first if config.w0_first is not None else w0_first
    if w0_first is not None:
        spec = spec.for_first_frequency(w0_first)
    return spec


class ImageKind:
    """One network over the pixel grid; rates in bits per pixel."""

    rate_option = "--bpp"
    default_suffix = ".png"
    allocation_samples = 16384  # coordinates the bit allocation measures distortion on
    default_threads = None  # torch's own count

    def __init__(self, info: ImageInfo, image: np.ndarray | None = None):
        self.info = info
        self.image = image

    @classmethod
    def load(cls, source, *, keep_alpha: bool = False) -> ImageKind:
        image = load_signal(source, keep_alpha=keep_alpha)
        height, width, channels = image.shape
        return cls(ImageInfo(height=height, width=width, channels=channels), image)

    # encoding

    def budget_bits(self, config) -> float | None:
        if _explicit(config.kbps):
            raise UsageError("--kbps is for audio; give an image's rate with --bpp")
        return None if config.bpp is None else config.bpp * self.info.samples

    def base_spec(self, config) -> ModelSpec:
        return _spec(config, self.info, in_features=2, w0_first=None)

    def max_layers(self, preset: Preset) -> int:
        return preset.max_layers

    def batch_fraction(self, spec: ModelSpec, preset: Preset) -> float:
        fraction = spec.batch_fraction or preset.batch_fraction
        return min(1.0, max(fraction, MIN_IMAGE_BATCH / self.info.samples))

    def bits_per_param(self, spec: ModelSpec) -> float:
        return spec.bits_per_param

    def qat_share(self, spec: ModelSpec, preset: Preset) -> float:
        return preset.qat_share if spec.fine_tunes_quantized else 0.0

    def weights(self) -> list[float]:
        return [1.0]

    def part(self, index: int, device: torch.device) -> Part:
        height, width, channels = self.image.shape
        coords = signals.image_grid(height, width).to(device)
        targets = torch.from_numpy(self.image.reshape(-1, channels)).to(device)
        return Part(coords, targets, 1.0)

    def measure(self, decoded: np.ndarray) -> dict[str, float]:
        """PSNR of the 8-bit image the decoder writes."""
        reconstruction = signals.to_uint8(decoded).astype(np.float32) / 255
        return {"psnr": signals.psnr(original=self.image, reconstruction=reconstruction)}

    # decoding

    def output_size(self, *, scale, size, rate, max_samples: int) -> tuple[int, int]:
        """(width, height) to render, checked against the cap before any allocation."""
        if rate is not None:
            raise UsageError("--rate is for audio; use --scale or --size for images")
        if scale is not None and size is not None:
            raise UsageError("give --scale or --size, not both")
        if size is not None:
            width, height = size
        elif scale is not None:
            if not 0 < scale <= 1024:
                raise UsageError(f"--scale must be in (0, 1024], got {scale}")
            width = max(1, round(self.info.width * scale))
            height = max(1, round(self.info.height * scale))
        else:
            width, height = self.info.width, self.info.height
        signals.check_output_pixels(width, height, max_samples)
        return width, height

    def render(self, models, size: tuple[int, int], device: torch.device) -> np.ndarray:
        """Float32 HxWxC in [0, 1]."""
        width, height = size
        coords = signals.image_grid(height, width).to(device)
        pixels = render(models[0], coords).clamp_(0.0, 1.0)
        return pixels.reshape(height, width, self.info.channels).cpu().numpy()

    def check_format(self, path: Path) -> None:
        image_format(path)

    def save(self, path: Path, image: np.ndarray, size: tuple[int, int]) -> None:
        signals.image_to_pil(image).save(path, format=image_format(path))

    def describe_output(self, image: np.ndarray, **_) -> str:
        height, width = image.shape[:2]
        return f"{width}x{height}"


class AudioKind:
    """One network per time segment; rates in kilobits per second.

    The waveform w in [-1, 1] is fitted as (w + 1) / 2 in [0, 1], so the codec's PSNR is
    the PSNR of the waveform mapped to [0, 1], the unit of published INR audio results.
    """

    rate_option = "--kbps"
    default_suffix = ".wav"
    allocation_samples = ALLOCATION_SAMPLES  # per segment
    default_threads = 1  # ops this small only wait for a second thread (docs/AUDIO.md)

    def __init__(self, info: AudioInfo, samples: np.ndarray | None = None):
        self.info = info
        self.samples = samples

    @classmethod
    def load(cls, source, *, sample_rate: int | None, seconds: float) -> AudioKind:
        if isinstance(source, str | Path):
            if sample_rate is not None:
                raise UsageError("sample_rate is for arrays; a file carries its own")
            samples, sample_rate = audio.load_audio(source)
        else:
            samples = audio.check_samples(source, sample_rate)
        frames, channels = samples.shape
        longest = max(1, min(round(seconds * sample_rate), MAX_SEGMENT_FRAMES))
        segments = math.ceil(frames / longest)
        if segments > 65535:
            raise InputError(
                f"{frames / sample_rate:.0f} s needs {segments} segments, more than a file "
                "holds (65535); raise --segment"
            )
        # equal segments (the last a few frames shorter) rather than a short remainder
        info = AudioInfo(
            sample_rate=int(sample_rate),
            frames=frames,
            channels=channels,
            segment_frames=math.ceil(frames / segments),
        )
        return cls(info, samples)

    # encoding

    def budget_bits(self, config) -> float | None:
        if _explicit(config.bpp):
            raise UsageError("--bpp is for images; give an audio rate with --kbps")
        return None if config.kbps is None else config.kbps * 1000.0 * self.info.duration

    def base_spec(self, config) -> ModelSpec:
        seconds = self.info.segment_frames / self.info.sample_rate
        w0_first = W0_FIRST_AT_HALF_SECOND * math.sqrt(seconds / 0.5)
        return _spec(config, self.info, in_features=1, w0_first=w0_first)

    def max_layers(self, preset: Preset) -> int:
        return min(preset.max_layers, AUDIO_MAX_LAYERS)

    def batch_fraction(self, spec: ModelSpec, preset: Preset) -> float:
        return AUDIO_BATCH_FRACTION

    def bits_per_param(self, spec: ModelSpec) -> float:
        return AUDIO_BITS_PER_PARAM

    def qat_share(self, spec: ModelSpec, preset: Preset) -> float:
        return 0.0  # audio loses 0.01-0.05 dB to quantization: nothing to recover

    def _span(self, index: int) -> tuple[int, int]:
        start = index * self.info.segment_frames
        return start, min(start + self.info.segment_frames, self.info.frames)

    def weights(self) -> list[float]:
        """Each segment's share of the clip's frames."""
        return [
            (stop - start) / self.info.frames
            for start, stop in map(self._span, range(self.info.networks))
        ]

    def part(self, index: int, device: torch.device) -> Part:
        start, stop = self._span(index)
        positions = torch.arange(start, stop, dtype=torch.float64)
        coords = audio.segment_coords(positions, index, self.info.segment_frames).to(device)
        targets = torch.from_numpy(audio.to_unit(self.samples[start:stop])).to(device)
        return Part(coords, targets, (stop - start) / self.info.frames)

    def measure(self, decoded: np.ndarray) -> dict[str, float]:
        """PSNR (waveform mapped to [0, 1]) and SNR of the 16-bit clip the decoder writes."""
        written = audio.to_int16(decoded).astype(np.float32) / audio.INT16_SCALE
        return {
            "psnr": signals.psnr(
                original=audio.to_unit(self.samples), reconstruction=audio.to_unit(written)
            ),
            "snr": audio.snr(original=self.samples, reconstruction=written),
        }

    # decoding

    def output_size(self, *, scale, size, rate, max_samples: int) -> int:
        """The output sample rate; the duration is always the clip's."""
        if size is not None:
            raise UsageError("--size is for images; use --scale or --rate for audio")
        if scale is not None and rate is not None:
            raise UsageError("give --scale or --rate, not both")
        if scale is not None:
            if not 0 < scale <= 1024:
                raise UsageError(f"--scale must be in (0, 1024], got {scale}")
            rate = round(self.info.sample_rate * scale)
        elif rate is None:
            rate = self.info.sample_rate
        if not 1 <= rate <= audio.MAX_SAMPLE_RATE:
            raise UsageError(f"output rate {rate} Hz is outside 1..{audio.MAX_SAMPLE_RATE}")
        frames = audio.output_frames(self.info.frames, self.info.sample_rate, rate)
        if frames > max_samples:
            raise LimitError(
                f"output of {frames} frames exceeds the limit of {max_samples}; "
                "raise it with --max-pixels if you mean it"
            )
        return rate

    def render(self, models, rate: int, device: torch.device) -> np.ndarray:
        """Float32 frames x channels in [-1, 1], segment by segment (memory stays flat)."""
        positions = audio.output_positions(self.info.frames, self.info.sample_rate, rate)
        out = np.empty((len(positions), self.info.channels), dtype=np.float32)
        bounds = np.arange(1, len(models)) * self.info.segment_frames
        edges = [0, *np.searchsorted(positions, bounds).tolist(), len(positions)]
        for index, model in enumerate(models):
            lo, hi = edges[index], edges[index + 1]
            if lo == hi:
                continue
            times = torch.from_numpy(positions[lo:hi])
            coords = audio.segment_coords(times, index, self.info.segment_frames).to(device)
            values = render(model, coords).clamp_(0.0, 1.0).cpu().numpy()
            out[lo:hi] = audio.from_unit(values)
        return out

    def check_format(self, path: Path) -> None:
        audio.audio_format(path)

    def save(self, path: Path, samples: np.ndarray, rate: int) -> None:
        audio.save_audio(path, samples, rate)

    def describe_output(self, samples: np.ndarray, *, scale=None, rate=None) -> str:
        rate = self.output_size(scale=scale, size=None, rate=rate, max_samples=len(samples))
        return f"{len(samples)} frames at {rate} Hz ({len(samples) / rate:.3f} s)"


def load_signal(source, *, keep_alpha: bool = False) -> np.ndarray:
    """Image array (HxW, HxWxC; uint8 or float in [0, 1]) or path -> float32 HxWxC."""
    if isinstance(source, str | Path):
        return signals.load_image(source, keep_alpha=keep_alpha)
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


def image_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise UsageError(f"cannot tell the image format from {path.name!r}; use .png")
    return IMAGE_FORMATS[suffix]


def for_source(source, config, *, sample_rate: int | None = None):
    """The adapter holding a signal to encode: audio by file suffix or given sample rate."""
    is_path = isinstance(source, str | Path)
    if sample_rate is not None or (is_path and audio.is_audio_path(source)):
        seconds = config.segment_seconds or segment_seconds(config.kbps)
        return AudioKind.load(source, sample_rate=sample_rate, seconds=seconds)
    if config.segment_seconds is not None:
        raise UsageError("--segment is for audio")
    return ImageKind.load(source, keep_alpha=config.keep_alpha)


def segment_seconds(kbps: float | None) -> float:
    """Default segment length: networks of similar size (~SEGMENT_BITS) at every rate, the
    size that fitted best in docs/AUDIO.md."""
    if kbps is None:
        return SEGMENT_SECONDS
    low, high = SEGMENT_SECONDS_RANGE
    return min(max(SEGMENT_BITS / (1000.0 * kbps), low), high)


def for_header(header: Header):
    """The adapter that renders a decoded file."""
    if isinstance(header.signal, AudioInfo):
        return AudioKind(header.signal)
    return ImageKind(header.signal)
