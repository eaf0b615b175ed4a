"""Writes kancoin/data/grid_laplace.u16: the latent coder's integer probability table.

Run once; the file is committed and kancoin only reads it (kancoin.latents), so encoder and
decoder use the same integers on every machine whatever its libm does with exp().
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kancoin.latents import (
    FRACTIONS,
    RESIDUAL_MAX,
    SCALES,
    TABLE_PATH,
    TABLE_TOTAL,
    scale_of,
)


def table() -> np.ndarray:
    residuals = np.arange(-RESIDUAL_MAX, RESIDUAL_MAX + 1, dtype=np.float64)
    rows = np.zeros((SCALES, FRACTIONS, residuals.size), dtype=np.uint16)
    for k in range(SCALES):
        b = scale_of(k)
        for f in range(FRACTIONS):
            mean = (f - FRACTIONS // 2) / FRACTIONS

            def cdf(x, mean=mean, b=b):
                z = x - mean
                return 0.5 + 0.5 * np.sign(z) * (1.0 - np.exp(-np.abs(z) / b))

            mass = cdf(residuals + 0.5) - cdf(residuals - 0.5)
            mass /= mass.sum()
            spare = TABLE_TOTAL - residuals.size  # every symbol keeps a frequency of 1
            freq = 1 + np.floor(mass * spare).astype(np.int64)
            freq[np.argmax(mass)] += TABLE_TOTAL - freq.sum()
            assert freq.min() >= 1 and freq.sum() == TABLE_TOTAL and freq.max() < 1 << 16
            rows[k, f] = freq
    return rows


if __name__ == "__main__":
    data = table().astype("<u2").tobytes()
    Path(TABLE_PATH).write_bytes(data)
    import hashlib

    print(TABLE_PATH, len(data), hashlib.sha256(data).hexdigest())
