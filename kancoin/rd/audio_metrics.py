"""Audio distortion for sweeps: PSNR, SNR, a log-spectral distance, boundary error; and the
two signal helpers baselines need (delay alignment, band-limited resampling).

Every measure takes float clips, frames x channels in [-1, 1], of equal shape. PSNR is
kancoin's (the waveform mapped to [0, 1], peak 1: docs/AUDIO.md); SNR is of the waveform.

Log-spectral distance (LSD, dB): per STFT frame (Hann window of about 32 ms, the power of two
nearest `0.032 x rate`, hop half of it, one-sided spectrum), the root mean square over
frequency bins of 10 log10(P / P') where P, P' are the power spectra of original and
decoded clip, each floored at EPSILON_DB below a full-scale sine's power in one bin (so
silence against silence scores 0 and one bin of digital silence does not dominate); the
mean over frames and channels. It is what listeners hear that PSNR misses: a codec that
drops the high band or adds broadband noise in quiet passages scores badly in LSD even
when the waveform error is small.
"""

from __future__ import annotations

import math

import numpy as np

from kancoin.audio import snr, to_unit
from kancoin.signals import psnr as _psnr

LSD_WINDOW_SECONDS = 0.032
EPSILON_DB = 100.0  # spectral floor below a full-scale bin (16-bit audio spans ~96 dB)
BOUNDARY_SECONDS = 0.005  # half-width of the window around a segment boundary


def psnr(*, original: np.ndarray, reconstruction: np.ndarray) -> float:
    """kancoin's audio PSNR: the waveforms mapped to [0, 1], peak 1."""
    _check_pair(original, reconstruction)
    return _psnr(original=to_unit(original), reconstruction=to_unit(reconstruction))


def waveform_snr(*, original: np.ndarray, reconstruction: np.ndarray) -> float:
    _check_pair(original, reconstruction)
    return snr(original=original, reconstruction=reconstruction)


def lsd_window(sample_rate: int) -> int:
    """STFT length: the power of two nearest 32 ms (512 at 16 kHz, 1024 at 44.1 kHz)."""
    return 1 << max(4, round(math.log2(LSD_WINDOW_SECONDS * sample_rate)))


def log_spectral_distance(
    *, original: np.ndarray, reconstruction: np.ndarray, sample_rate: int
) -> float:
    """Mean log-spectral distance in dB (module docstring); 0 for identical clips."""
    _check_pair(original, reconstruction)
    size = lsd_window(sample_rate)
    window = np.hanning(size + 1)[:-1]  # periodic Hann
    floor = (0.5 * window.sum()) ** 2 * 10.0 ** (-EPSILON_DB / 10.0)
    distances = []
    for channel in range(original.shape[1]):
        spectra = [
            _power_spectra(clip[:, channel].astype(np.float64), window) + floor
            for clip in (original, reconstruction)
        ]
        diff = 10.0 * np.log10(spectra[0] / spectra[1])
        distances.append(np.sqrt(np.mean(diff**2, axis=1)))
    return float(np.mean(np.concatenate(distances)))


def _power_spectra(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(frames, bins) power of the Hann-windowed frames (hop size / 2, zero-padded ends)."""
    size, hop = len(window), len(window) // 2
    count = max(1, math.ceil(max(len(x) - size, 0) / hop) + 1)
    padded = np.zeros((count - 1) * hop + size)
    padded[: len(x)] = x
    index = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return np.abs(np.fft.rfft(padded[index] * window, axis=1)) ** 2


def boundary_error(
    *,
    original: np.ndarray,
    reconstruction: np.ndarray,
    boundaries: list[int],
    half_width: int,
) -> dict[str, float | None]:
    """The error in windows of +-half_width frames around each boundary, against the clip's:
    `boundary_psnr` (kancoin's PSNR inside the windows) and `boundary_excess_db`
    (10 log10 of the windows' MSE over the whole clip's: 0 when boundaries are as good as
    the rest, positive when they click). None without boundaries."""
    _check_pair(original, reconstruction)
    frames = len(original)
    mask = np.zeros(frames, dtype=bool)
    for b in boundaries:
        mask[max(0, b - half_width) : min(frames, b + half_width)] = True
    if not mask.any():
        return {"boundary_psnr": None, "boundary_excess_db": None}
    error = (original.astype(np.float64) - reconstruction) ** 2
    near, overall = float(error[mask].mean()), float(error.mean())
    near_psnr = psnr(original=original[mask], reconstruction=reconstruction[mask])
    excess = 0.0 if near == overall else 10.0 * math.log10(max(near, 1e-30) / max(overall, 1e-30))
    return {"boundary_psnr": near_psnr, "boundary_excess_db": excess}


def align_to(original: np.ndarray, decoded: np.ndarray, *, max_lag: int) -> tuple[np.ndarray, int]:
    """`decoded` moved by the delay (|delay| <= max_lag frames) that best correlates it with
    `original` (summed over channels, by FFT), then cut or zero-padded to its length.

    Returns (aligned clip, delay): decoded frame k + delay is original frame k. Codecs with
    an encoder delay their decoder did not remove (LAME at low rates) are measured fairly.
    """
    frames = len(original)
    size = 1 << math.ceil(math.log2(frames + len(decoded) + 1))
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    for channel in range(original.shape[1]):
        a = np.fft.rfft(original[:, channel].astype(np.float64), size)
        b = np.fft.rfft(decoded[:, channel].astype(np.float64), size)
        spectrum += np.conj(a) * b
    correlation = np.fft.irfft(spectrum, size)  # correlation[d] = sum_k o[k] d[k + d]
    lags = np.arange(-max_lag, max_lag + 1)
    delay = int(lags[np.argmax(correlation[lags % size])])
    aligned = np.zeros_like(original, dtype=np.float32)
    lo, hi = max(0, -delay), min(frames, len(decoded) - delay)
    if hi > lo:
        aligned[lo:hi] = decoded[lo + delay : hi + delay]
    return aligned, delay


def resample(samples: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    """Band-limited resampling of a whole clip by FFT (frames x channels, float32): the
    spectrum cut or zero-extended to the new length round(frames x to / from)."""
    if rate_from == rate_to:
        return samples.astype(np.float32)
    frames = len(samples)
    out_frames = max(1, round(frames * rate_to / rate_from))
    spectrum = np.fft.rfft(samples.astype(np.float64), axis=0)
    bins = out_frames // 2 + 1
    kept = np.zeros((bins, samples.shape[1]), dtype=np.complex128)
    n = min(bins, spectrum.shape[0])
    kept[:n] = spectrum[:n]
    if out_frames < frames and out_frames % 2 == 0:
        kept[-1] = kept[-1].real  # the new Nyquist bin of a real signal
    out = np.fft.irfft(kept, out_frames, axis=0) * (out_frames / frames)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _check_pair(original: np.ndarray, reconstruction: np.ndarray) -> None:
    if original.shape != reconstruction.shape:
        raise ValueError(f"shape mismatch: {original.shape} vs {reconstruction.shape}")
