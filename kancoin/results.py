"""What an encode returns: the bytes, their header, and what was measured on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
    psnr_target: float | None = None  # --psnr, when asked for

    @property
    def target_met(self) -> bool | None:
        return None if self.psnr_target is None else self.psnr >= self.psnr_target

    def __repr__(self) -> str:
        unit = self.header.signal.rate_unit
        return (
            f"EncodeResult(output={str(self.output) if self.output else None!r}, "
            f"bytes={self.num_bytes}, {unit}={self.rate:.4f}, psnr={self.psnr:.2f}, "
            f"model={self.header.spec.describe()!r}, steps={self.steps})"
        )

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
        coded = params - self._frozen_params()  # a prior's layers are not in the file
        summary = {
            "input": str(self.input) if self.input else None,
            "output": str(self.output) if self.output else None,
            "bytes": self.num_bytes,
            self.header.signal.rate_unit: round(self.rate, 6),
            "psnr": _json_db(self.psnr),
            "psnr_float": _json_db(self.psnr_float),
            "psnr_quantized": _json_db(self.psnr_quantized),
            "model": self.header.spec.describe(),
            "params": params,
            "bits": self.bit_depths(),
            "mean_bits_per_param": round(8 * self.header.payload_words * 4 / max(1, coded), 3),
            "steps": self.steps,
            "qat_steps": self.qat_steps,
            "rollbacks": self.rollbacks,
            "seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "fit_cpu_seconds": round(self.fit_cpu_seconds, 3),
            "device": self.device,
            "signal": self.header.signal.describe(),
        }
        if self.header.prior is not None:  # a cohort prior supplied the first layers
            summary["prior"] = self.header.prior.hex
            summary["freeze"] = self.header.prior.freeze
        if self.psnr_target is not None:
            summary["psnr_target"] = self.psnr_target
            summary["target_met"] = self.target_met
        if self.snr is not None:
            summary["snr"] = _json_db(self.snr)
            summary["networks"] = self.header.networks
        return summary

    def _frozen_params(self) -> int:
        prior = self.header.prior
        if prior is None:
            return 0
        shapes = self.header.spec.tensor_shapes()[: 2 * prior.freeze]
        return self.header.networks * sum(int(np.prod(shape)) for _, shape in shapes)


def _json_db(value: float | None) -> float | None:
    """A dB figure for JSON: infinite (an exact decode, or the SNR of silence) and NaN
    become null, since JSON has no Infinity (docs/CLI.md)."""
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)
