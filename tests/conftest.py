"""Shared fixtures: small generated signals (fast), and the shared data when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# tiny signals: one thread avoids OpenMP sync costs that dominate small matmuls
torch.set_num_threads(1)


def smooth_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth float image in [0, 1]: easy to fit, so tiny networks reach good PSNR."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = []
    for _ in range(channels):
        fy, fx, phase = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 6.28)
        plane = 0.5 + 0.4 * np.sin(fy * 6.28 * y / height + fx * 6.28 * x / width + phase)
        planes.append(plane)
    return np.stack(planes, axis=-1).astype(np.float32)


@pytest.fixture
def image_file(tmp_path):
    """Write a small RGB PNG and return its path."""

    def make(height=16, width=24, channels=3, name="img.png", seed=0) -> Path:
        pixels = np.rint(smooth_image(height, width, channels, seed) * 255).astype(np.uint8)
        path = tmp_path / name
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode=mode).save(path)
        return path

    return make


@pytest.fixture(scope="session")
def tiny_inr(tmp_path_factory) -> bytes:
    """One small encoded file shared by the format tests (encoding costs a few seconds)."""
    import kancoin

    image = smooth_image(12, 20)
    return kancoin.encode(image, bpp=4.0, steps=5, preset="fast").data


def kodak_path(name: str) -> Path:
    path = SHARED_DATA / "kodak" / name
    if not path.is_file():
        pytest.skip(f"shared Kodak data not found at {path.parent} (CI and dev machines have it)")
    return path


def fit_calls(monkeypatch, **options) -> list:
    """The FitConfigs of every fit an encode of a small smooth image runs: the fit itself,
    then any fine-tuning."""
    import kancoin
    from kancoin import encoder

    calls = []
    real_fit = encoder.fit

    def recording_fit(model, coords, targets, config, **kwargs):
        calls.append(config)
        return real_fit(model, coords, targets, config, **kwargs)

    monkeypatch.setattr(encoder, "fit", recording_fit)
    kancoin.encode(smooth_image(16, 16), **options)
    return calls
