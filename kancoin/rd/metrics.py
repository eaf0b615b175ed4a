"""Distortion as the field reports it: RGB PSNR and MS-SSIM on 8-bit images.

MS-SSIM follows Wang, Simoncelli and Bovik (2003) and their MATLAB reference: 5 scales with
weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an 11-tap Gaussian window of sigma 1.5
applied without padding, K1 = 0.01, K2 = 0.03, 2x2 averaging between scales. Colour images
are scored per channel and the channels averaged, as CompressAI's `ms-ssim-rgb` does.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kancoin.signals import psnr

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def psnr_rgb(*, original: np.ndarray, reconstruction: np.ndarray) -> float:
    """PSNR in dB of two uint8 images over all channels (peak 255)."""
    _check_pair(original, reconstruction)
    return psnr(original=original / 255.0, reconstruction=reconstruction / 255.0)


def ms_ssim_min_side() -> int:
    """The smallest image side the 5 scales fit on (the window must fit the coarsest)."""
    return (WINDOW_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1


def ms_ssim(*, original: np.ndarray, reconstruction: np.ndarray) -> float | None:
    """MS-SSIM in [0, 1] of two uint8 HxWxC images; None when they are too small for 5 scales."""
    _check_pair(original, reconstruction)
    if min(original.shape[:2]) < ms_ssim_min_side():
        return None
    x = _to_tensor(original)
    y = _to_tensor(reconstruction)
    window = _gaussian_window(WINDOW_SIZE, WINDOW_SIGMA)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64)
    contrast_terms = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        ssim, contrast = _ssim_per_channel(x, y, window)
        if scale < len(MS_SSIM_WEIGHTS) - 1:
            contrast_terms.append(contrast)
            x, y = _halve(x), _halve(y)
    # negative similarities have no fractional power: clamp them at 0 like pytorch-msssim
    terms = torch.stack([*contrast_terms, ssim]).clamp_min(0.0)  # (scales, channels)
    per_channel = torch.prod(terms ** weights[:, None], dim=0)
    return float(per_channel.mean())


def _check_pair(original: np.ndarray, reconstruction: np.ndarray) -> None:
    if original.shape != reconstruction.shape:
        raise ValueError(f"shape mismatch: {original.shape} vs {reconstruction.shape}")
    if original.dtype != np.uint8 or reconstruction.dtype != np.uint8:
        raise ValueError("metrics are measured on 8-bit images")


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxW(xC) -> float64 (1, C, H, W) in [0, 1]."""
    array = image if image.ndim == 3 else image[:, :, None]
    return torch.from_numpy(array.astype(np.float64) / 255.0).permute(2, 0, 1)[None]


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    window = torch.exp(-(offsets**2) / (2 * sigma**2))
    return window / window.sum()


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter per channel, 'valid' (no padding) as in the reference."""
    channels, size = x.shape[1], window.numel()
    x = F.conv2d(x, window.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(x, window.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def _ssim_per_channel(
    x: torch.Tensor, y: torch.Tensor, window: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per channel, each of shape (C,)."""
    c1, c2 = K1**2, K2**2
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x**2
    var_y = _blur(y * y, window) - mu_y**2
    cov = _blur(x * y, window) - mu_x * mu_y
    contrast = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * contrast).mean(dim=(0, 2, 3)), contrast.mean(dim=(0, 2, 3))


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2x2 mean; an odd last row/column is repeated (the reference's symmetric padding)."""
    pad_bottom, pad_right = x.shape[2] % 2, x.shape[3] % 2
    if pad_bottom or pad_right:
        x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
    return F.avg_pool2d(x, kernel_size=2)
