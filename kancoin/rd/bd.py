"""Bjontegaard deltas (VCEG-M33): average rate and PSNR gaps between two RD curves.

Each curve is fitted by a polynomial (cubic with 4+ points, lower with fewer) in log-rate,
integrated over the interval both curves cover, and the mean gap reported. Negative
BD-rate means the test codec needs fewer bits than the anchor for the same PSNR.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_DEGREE = 3


def bd_rate(
    anchor_bpp: Sequence[float],
    anchor_psnr: Sequence[float],
    test_bpp: Sequence[float],
    test_psnr: Sequence[float],
) -> float | None:
    """Mean rate difference of test against anchor in percent at equal PSNR; None if the
    curves share no PSNR interval or have fewer than 2 points."""
    curves = _checked(anchor_bpp, anchor_psnr, test_bpp, test_psnr)
    if curves is None:
        return None
    (log_r1, psnr1), (log_r2, psnr2) = curves
    gap = _mean_gap(psnr1, log_r1, psnr2, log_r2)
    return None if gap is None else float((np.exp(gap) - 1.0) * 100.0)


def bd_psnr(
    anchor_bpp: Sequence[float],
    anchor_psnr: Sequence[float],
    test_bpp: Sequence[float],
    test_psnr: Sequence[float],
) -> float | None:
    """Mean PSNR difference of test against anchor in dB at equal rate; None if the curves
    share no rate interval or have fewer than 2 points."""
    curves = _checked(anchor_bpp, anchor_psnr, test_bpp, test_psnr)
    if curves is None:
        return None
    (log_r1, psnr1), (log_r2, psnr2) = curves
    gap = _mean_gap(log_r1, psnr1, log_r2, psnr2)
    return None if gap is None else float(gap)


def _checked(anchor_bpp, anchor_psnr, test_bpp, test_psnr):
    pairs = []
    for bpp, psnr in ((anchor_bpp, anchor_psnr), (test_bpp, test_psnr)):
        bpp, psnr = np.asarray(bpp, dtype=np.float64), np.asarray(psnr, dtype=np.float64)
        if bpp.shape != psnr.shape or bpp.ndim != 1:
            raise ValueError("each curve needs as many PSNRs as rates")
        if np.any(bpp <= 0) or not np.all(np.isfinite(psnr)):
            raise ValueError("rates must be positive and PSNRs finite")
        if len(bpp) < 2:
            return None
        pairs.append((np.log(bpp), psnr))
    return pairs


def _mean_gap(x1, y1, x2, y2) -> float | None:
    """Mean of (fit2 - fit1) over the x interval both curves cover, y fitted against x."""
    low, high = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not high > low:
        return None
    integrals = []
    for x, y in ((x1, y1), (x2, y2)):
        degree = min(MAX_DEGREE, len(x) - 1)
        antiderivative = np.polyint(np.polyfit(x, y, degree))
        integrals.append(np.polyval(antiderivative, high) - np.polyval(antiderivative, low))
    return (integrals[1] - integrals[0]) / (high - low)
