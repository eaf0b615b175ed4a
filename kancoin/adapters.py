"""What the encoder and decoder need to know about each kind of signal (SignalKind).

The loop in kancoin/encoder.py is the same for every kind: fit one network per part,
allocate bits over all of them at once, write, decode the bytes, measure. A kind supplies
the pieces that differ: loading, the rate unit, each part's coordinates and [0, 1]
targets, model defaults, rendering the networks at an output size, saving and measuring.
Images are one part; audio is one part per time segment (docs/AUDIO.md).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from kancoin import audio, signals
from kancoin.audio import AudioInfo
from kancoin.bitstream import Header
from kancoin.errors import InputError, LimitError, OutputError, UsageError
from kancoin.models import ModelSpec, spec_class_by_name
from kancoin.presets import Preset
from kancoin.signal_info import SignalInfo
from kancoin.signals import ImageInfo

if TYPE_CHECKING:
    import torch  # imported where used: reading and pricing a header must not load torch

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
# the channel counts each format holds (grey, grey + alpha, RGB, RGBA), as Pillow writes them
IMAGE_CHANNELS = {
    "PNG": (1, 2, 3, 4),
    "JPEG": (1, 3),
    "BMP": (1, 3, 4),
    "TIFF": (1, 2, 3, 4),
    "PPM": (1, 3, 4),
    "WEBP": (1, 2, 3, 4),
}
IMAGE_MAX_SIDE = {"JPEG": 65500, "WEBP": 16383}  # libjpeg's and libwebp's own limits

DEFAULT_IMAGE_THREADS = 2
SMALL_IMAGE_PIXELS = 1 << 18  # below: one thread
LOSSY_IMAGE_FORMATS = ("JPEG", "WEBP")
DEFAULT_LOSSY_QUALITY = 95  # decoding to .jpg/.webp: near-transparent, stated in the output

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
# --psnr without a rate cap: the network is planned as for the default rate at or above the
# reference PSNR, and smaller below it (Kodak at the default preset: 29.3 dB at 0.1 bpp,
# 31.5 dB at 0.3, about 2 dB per doubling); a cap given with --psnr plans at the cap
PSNR_PLAN_REFERENCE_DB = 30.0
PSNR_PLAN_DB_PER_DOUBLING = 2.0
PSNR_PLAN_MIN_BPP = 0.02


@dataclass(frozen=True)
class Part:
    coords: torch.Tensor
    targets: torch.Tensor  # in [0, 1]
    weight: float  # share of the signal's samples, so part MSEs add up to the signal's


def _spec(config, info, in_features: int, w0_first: float | None) -> ModelSpec:
    """The model family's defaults for this signal; w0_first only where the family has it."""
    options = config.model
    spec = spec_class_by_name(options.model)(in_features=in_features, out_features=info.channels)
    w0_first = options.w0_first if options.w0_first is not None else w0_first
    if w0_first is not None:
        spec = spec.for_first_frequency(w0_first)
    return spec


class SignalKind(ABC):
    """What the encoder and decoder ask of a kind of signal; one subclass per kind.

    An output size is a tuple: (width, height) for images, (sample rate,) for audio.
    """

    rate_option: ClassVar[str]  # the rate's option name, e.g. "bpp"
    default_suffix: ClassVar[str]  # what `kancoin decode` writes when no output is named
    allocation_samples: ClassVar[int]  # coordinates (per part) the bit allocation measures
    default_threads: ClassVar[int | None]  # None: torch's own count

    info: SignalInfo

    # encoding

    @abstractmethod
    def budget_bits(self, config) -> float | None:
        """The file's size limit in bits from the config's rate; None: no rate target."""

    @abstractmethod
    def base_spec(self, config) -> ModelSpec:
        """The family's defaults for this signal, before sizing."""

    @abstractmethod
    def max_layers(self, preset: Preset) -> int: ...

    @abstractmethod
    def batch_fraction(self, spec: ModelSpec, preset: Preset) -> float: ...

    @abstractmethod
    def bits_per_param(self, spec: ModelSpec) -> float: ...

    @abstractmethod
    def qat_share(self, spec: ModelSpec, preset: Preset) -> float:
        """Fine-tuning steps as a share of the fit's (0: no fine-tuning)."""

    @abstractmethod
    def weights(self) -> list[float]:
        """Each part's share of the signal's samples."""

    @abstractmethod
    def part(self, index: int, device: torch.device) -> Part:
        """Part `index`'s coordinates and [0, 1] targets."""

    @abstractmethod
    def measure(self, decoded: np.ndarray) -> dict[str, float]:
        """PSNR (and more) of the output as the decoder writes it."""

    @abstractmethod
    def flat_psnr(self) -> float:
        """PSNR of what constant networks (each part's mean) code."""

    @abstractmethod
    def plan_bits_for_psnr(self, psnr: float) -> float:
        """Bits to plan the network at for a quality target without a rate cap."""

    @abstractmethod
    def rate_for_bits(self, bits: float) -> str:
        """The option that asks for `bits` on this signal, e.g. '--bpp 9.2'."""

    # decoding

    @abstractmethod
    def output_size(self, *, scale, size, rate, max_samples: int) -> tuple[int, ...]:
        """The size to render, checked against the cap before any allocation."""

    @abstractmethod
    def render(self, models, size: tuple[int, ...], device: torch.device) -> np.ndarray: ...

    @abstractmethod
    def output_samples(self, size: tuple[int, ...]) -> int:
        """Samples (pixels, frames) an output of this size holds: the decode budget's unit."""

    @abstractmethod
    def writer_bytes(self) -> int:
        """Bytes per output sample that saving holds beyond the float32 output."""

    @abstractmethod
    def check_format(
        self, path: Path, size: tuple[int, ...] | None = None, *, quality: int | None = None
    ) -> None:
        """Refuse an output path whose format cannot hold this signal (channels, size,
        rate) or the options given for it, before any work."""

    @abstractmethod
    def save(
        self, path: Path, signal: np.ndarray, size: tuple[int, ...], *, quality=None
    ) -> None: ...

    @abstractmethod
    def matches_file(self, path: Path) -> bool:
        """Whether `path` holds a signal of this file's shape (the original, likely)."""

    @abstractmethod
    def describe_output(self, signal: np.ndarray, *, scale=None, rate=None) -> str: ...


class ImageKind(SignalKind):
    """One network over the pixel grid; rates in bits per pixel."""

    rate_option = "bpp"
    default_suffix = ".png"
    allocation_samples = 16384  # coordinates the bit allocation measures distortion on

    @property
    def default_threads(self) -> int:
        """A count fixed by the image, not the machine's cores: gradients are summed per
        thread, so the count changes the bytes; with this default every machine writes the
        same file. A Kodak step has 3 chunks, so more threads would gain little at the
        default batch; small images run on one (a second only waits on tiny ops)."""
        return DEFAULT_IMAGE_THREADS if self.info.samples >= SMALL_IMAGE_PIXELS else 1

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
        from kancoin.config import explicit

        if explicit(config.rate.kbps):
            raise UsageError("kbps is for audio; give an image's rate as bpp")
        return None if config.rate.bpp is None else config.rate.bpp * self.info.samples

    def plan_bits_for_psnr(self, psnr: float) -> float:
        """Bits to plan the network at for a quality target without a rate cap."""
        from kancoin.config import DEFAULT_BPP

        doublings = (psnr - PSNR_PLAN_REFERENCE_DB) / PSNR_PLAN_DB_PER_DOUBLING
        bpp = min(float(DEFAULT_BPP), max(PSNR_PLAN_MIN_BPP, DEFAULT_BPP * 2**doublings))
        return bpp * self.info.samples

    def rate_for_bits(self, bits: float) -> str:
        """The option that asks for `bits` on this signal, e.g. '--bpp 9.2'."""
        return f"--bpp {math.ceil(100 * bits / self.info.samples) / 100:g}"

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
        import torch

        height, width, channels = self.image.shape
        coords = signals.image_grid(height, width).to(device)
        targets = torch.from_numpy(self.image.reshape(-1, channels)).to(device)
        return Part(coords, targets, 1.0)

    def flat_psnr(self) -> float:
        """PSNR of the image's mean colour, as 8 bits: what a constant network codes."""
        mean = self.image.reshape(-1, self.info.channels).mean(axis=0, dtype=np.float64)
        mean = np.rint(mean * 255).astype(np.float32) / 255.0  # as the file's pixels are read
        return signals.psnr(
            original=self.image, reconstruction=np.broadcast_to(mean, self.image.shape)
        )

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

    def output_samples(self, size: tuple[int, int]) -> int:
        return size[0] * size[1]

    def writer_bytes(self) -> int:
        """Per pixel, beyond the float output: the 8-bit copy and Pillow's own buffer
        (4 bytes a pixel but for grey)."""
        return self.info.channels + (1 if self.info.channels == 1 else 4)

    def render(self, models, size: tuple[int, int], device: torch.device) -> np.ndarray:
        """Float32 HxWxC in [0, 1]; coordinates made per chunk, never the whole grid."""
        import torch

        from kancoin.render import render_into

        width, height = size
        ys = signals.image_grid(height, 1)[:, 0].contiguous().to(device)  # pixel-centre rows
        xs = signals.image_grid(1, width)[:, 1].contiguous().to(device)

        def coords_at(start: int, stop: int) -> torch.Tensor:
            index = torch.arange(start, stop, device=device)
            return torch.stack([ys[index // width], xs[index % width]], dim=1)

        out = torch.empty((width * height, self.info.channels))
        pixels = render_into(models[0], width * height, coords_at, ys, out=out)
        pixels.nan_to_num_(nan=0.0).clamp_(0.0, 1.0)  # a hostile network's NaN: black
        return out.reshape(height, width, self.info.channels).numpy()

    def check_format(
        self, path: Path, size: tuple[int, int] | None = None, *, quality: int | None = None
    ) -> None:
        """Refuse, before any work, a format that cannot hold this image's channels."""
        name = image_format(path)
        if quality is not None and not is_lossy_image(path):
            raise UsageError(f"--quality is for .jpg and .webp outputs, not {Path(path).name!r}")
        channels = self.info.channels
        if channels not in IMAGE_CHANNELS[name]:
            held = ", ".join(map(str, IMAGE_CHANNELS[name]))
            raise UsageError(
                f"{Path(path).name}: {name} cannot hold {channels}-channel images "
                f"({held} only); use .png"
            )
        side = IMAGE_MAX_SIDE.get(name)
        if size is not None and side is not None and max(size) > side:
            raise UsageError(
                f"{Path(path).name}: {name} cannot hold {size[0]}x{size[1]} (at most {side} "
                "pixels a side); use .png"
            )

    def save(self, path: Path, image: np.ndarray, size: tuple[int, int], *, quality=None) -> None:
        options = {}
        if image_format(path) in LOSSY_IMAGE_FORMATS:
            options["quality"] = quality or DEFAULT_LOSSY_QUALITY
        try:
            signals.image_to_pil(image).save(path, format=image_format(path), **options)
        except (ValueError, KeyError, TypeError) as exc:  # OSError: fileio's OutputError
            raise OutputError(f"{path}: cannot write image ({exc})") from None

    def matches_file(self, path: Path) -> bool:
        """Whether `path` is an image of this file's size (the original, by its look)."""
        try:
            from PIL import Image

            with Image.open(path) as img:
                return img.size == (self.info.width, self.info.height) or (
                    img.size == (self.info.height, self.info.width)  # EXIF-rotated originals
                )
        except Exception:  # unreadable: not an image we would have encoded
            return False

    def describe_output(self, image: np.ndarray, **_) -> str:
        height, width = image.shape[:2]
        return f"{width}x{height}"


class AudioKind(SignalKind):
    """One network per time segment; rates in kilobits per second.

    The waveform w in [-1, 1] is fitted as (w + 1) / 2 in [0, 1], so the codec's PSNR is
    the PSNR of the waveform mapped to [0, 1], the unit of published INR audio results.
    """

    rate_option = "kbps"
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
                "holds (65535); raise segment_seconds (--segment)"
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
        from kancoin.config import explicit

        if explicit(config.rate.bpp):
            raise UsageError("bpp is for images; give an audio rate as kbps")
        return None if config.rate.kbps is None else config.rate.kbps * 1000.0 * self.info.duration

    def plan_bits_for_psnr(self, psnr: float) -> float:
        """Audio plans at the default rate: its networks are small and per segment."""
        from kancoin.config import DEFAULT_KBPS

        return float(DEFAULT_KBPS) * 1000.0 * self.info.duration

    def rate_for_bits(self, bits: float) -> str:
        return f"--kbps {math.ceil(100 * bits / (1000.0 * self.info.duration)) / 100:g}"

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
        import torch

        start, stop = self._span(index)
        positions = torch.arange(start, stop, dtype=torch.float64)
        coords = audio.segment_coords(positions, index, self.info.segment_frames).to(device)
        targets = torch.from_numpy(audio.to_unit(self.samples[start:stop])).to(device)
        return Part(coords, targets, (stop - start) / self.info.frames)

    def flat_psnr(self) -> float:
        """PSNR (waveform in [0, 1]) of each segment's mean, as 16 bits: what constant
        networks code."""
        flat = np.empty_like(self.samples)
        for index in range(self.info.networks):
            start, stop = self._span(index)
            mean = self.samples[start:stop].mean(axis=0, dtype=np.float64)
            mean = np.rint(mean * audio.INT16_SCALE).astype(np.float32) / audio.INT16_SCALE
            flat[start:stop] = mean
        return signals.psnr(
            original=audio.to_unit(self.samples), reconstruction=audio.to_unit(flat)
        )

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

    def output_size(self, *, scale, size, rate, max_samples: int) -> tuple[int]:
        """(output sample rate,); the duration is always the clip's."""
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
        return (rate,)

    def output_samples(self, size: tuple[int]) -> int:
        (rate,) = size
        return audio.output_frames(self.info.frames, self.info.sample_rate, rate)

    def writer_bytes(self) -> int:
        """Per frame, beyond the float output: the 16-bit copy and its float staging."""
        return 2 * self.info.channels + 4 * self.info.channels

    def render(self, models, size: tuple[int], device: torch.device) -> np.ndarray:
        """Float32 frames x channels in [-1, 1], segment by segment and chunk by chunk:
        times are made per chunk, networks built one at a time (memory stays flat)."""
        import torch

        from kancoin.render import render_into

        (rate,) = size
        count = self.output_samples(size)
        step = self.info.sample_rate / rate  # output frame j sits at time j * step
        out = np.empty((count, self.info.channels), dtype=np.float32)
        view = torch.from_numpy(out)
        like = torch.empty(0, device=device)
        segment = self.info.segment_frames
        edges = [0, *(_first_at(b * segment, step, count) for b in range(1, len(models))), count]
        for index in range(len(models)):
            lo, hi = edges[index], edges[index + 1]
            if lo == hi:
                continue

            def coords_at(start: int, stop: int, lo=lo, index=index) -> torch.Tensor:
                times = torch.arange(lo + start, lo + stop, dtype=torch.float64) * step
                return audio.segment_coords(times, index, segment).to(device)

            part = render_into(models[index], hi - lo, coords_at, like, out=view[lo:hi])
            part.nan_to_num_(nan=0.5).clamp_(0.0, 1.0)  # a hostile network's NaN: silence
            part.mul_(2.0).sub_(1.0)  # audio.from_unit, in place
        return out

    def check_format(
        self, path: Path, size: tuple[int] | None = None, *, quality: int | None = None
    ) -> None:
        """Refuse, before any work, a format that cannot hold the channels or the rate."""
        if quality is not None:
            raise UsageError("--quality is for .jpg and .webp image outputs")
        audio.check_writable(path, self.info.channels, None if size is None else size[0])

    def save(self, path: Path, samples: np.ndarray, size: tuple[int], *, quality=None) -> None:
        audio.save_audio(path, samples, size[0])

    def matches_file(self, path: Path) -> bool:
        """Whether `path` is a clip of this file's frames, rate and channels."""
        try:
            found = audio._soundfile().info(str(path))
        except Exception:  # unreadable: not audio we would have encoded
            return False
        return (found.frames, found.samplerate, found.channels) == (
            self.info.frames,
            self.info.sample_rate,
            self.info.channels,
        )

    def describe_output(self, samples: np.ndarray, *, scale=None, rate=None) -> str:
        (rate,) = self.output_size(scale=scale, size=None, rate=rate, max_samples=len(samples))
        return f"{len(samples)} frames at {rate} Hz ({len(samples) / rate:.3f} s)"


def _first_at(bound: float, step: float, count: int) -> int:
    """The first output frame j (of count) with j * step >= bound, in float64 like the
    times themselves (what searchsorted over every frame's time would find)."""
    j = min(count, max(0, math.ceil(bound / step)))
    while j > 0 and (j - 1) * step >= bound:
        j -= 1
    while j < count and j * step < bound:
        j += 1
    return j


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


def is_lossy_image(path) -> bool:
    return IMAGE_FORMATS.get(Path(path).suffix.lower()) in LOSSY_IMAGE_FORMATS


def image_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise UsageError(f"cannot tell the image format from {path.name!r}; use .png")
    return IMAGE_FORMATS[suffix]


def for_source(source, config, *, sample_rate: int | None = None) -> SignalKind:
    """The adapter holding a signal to encode: audio by file suffix or given sample rate."""
    is_path = isinstance(source, str | Path)
    if sample_rate is not None or (is_path and audio.is_audio_path(source)):
        seconds = config.model.segment_seconds or segment_seconds(config.rate.kbps)
        return AudioKind.load(source, sample_rate=sample_rate, seconds=seconds)
    if config.model.segment_seconds is not None:
        raise UsageError("segment_seconds is for audio")
    return ImageKind.load(source, keep_alpha=config.model.keep_alpha)


def segment_seconds(kbps: float | None) -> float:
    """Default segment length: networks of similar size (~SEGMENT_BITS) at every rate, the
    size that fitted best in docs/AUDIO.md."""
    if kbps is None:
        return SEGMENT_SECONDS
    low, high = SEGMENT_SECONDS_RANGE
    return min(max(SEGMENT_BITS / (1000.0 * kbps), low), high)


def for_header(header: Header) -> SignalKind:
    """The adapter that renders a decoded file."""
    if isinstance(header.signal, AudioInfo):
        return AudioKind(header.signal)
    return ImageKind(header.signal)
