"""What an encode returns: the bytes, their header, and what was measured on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kancoin.bitstream import Header


@dataclass
class EncodeResult:
    data: bytes
    header: Header
    psnr: float  # of the decoded output as written (8-bit image, 16-bit audio), real bytes
    psnr_float: float  # of the float networks before quantization
    psnr_quantized: float  # of the float render of the quantized networks
    steps: int  # per network (the mean, when segments stop at a time budget)
    fit_seconds: float
    seconds: float
    device: str
    output: Path | None = None
    input: Path | None = None
    history: list = field(default_factory=list)  # the fit's (step, s, psnr), one network only
    fit_cpu_seconds: float = 0.0
    snr: float | None = None  # audio: signal-to-noise ratio of the decoded waveform, dB
    qat_steps: int = 0  # fine-tuning steps on the rounded weights, per network
    rollbacks: int = 0  # collapsed fits the divergence guard rolled back (kancoin.fit.trainer)

    @property
    def num_bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / self.header.signal.samples

    @property
    def rate(self) -> float:
        """In the signal's unit: bpp for images, kbps for audio."""
        return self.header.signal.rate(8 * len(self.data))

    def bit_depths(self) -> list[int]:
        return [c.entropy.max_abs.bit_length() + 1 for c in self.header.tensors]

    def summary(self) -> dict:
        params = self.header.spec.num_params() * self.header.networks
        summary = {
            "input": str(self.input) if self.input else None,
            "output": str(self.output) if self.output else None,
            "bytes": self.num_bytes,
            self.header.signal.rate_unit: round(self.rate, 6),
            "psnr": round(self.psnr, 4),
            "psnr_float": round(self.psnr_float, 4),
            "psnr_quantized": round(self.psnr_quantized, 4),
            "model": self.header.spec.describe(),
            "params": params,
            "bits": self.bit_depths(),
            "mean_bits_per_param": round(8 * self.header.payload_words * 4 / max(1, params), 3),
            "steps": self.steps,
            "qat_steps": self.qat_steps,
            "rollbacks": self.rollbacks,
            "seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "fit_cpu_seconds": round(self.fit_cpu_seconds, 3),
            "device": self.device,
            "signal": self.header.signal.describe(),
        }
        if self.snr is not None:
            summary["snr"] = round(self.snr, 4)
            summary["networks"] = self.header.networks
        return summary
