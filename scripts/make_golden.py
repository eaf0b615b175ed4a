"""Write the golden .inr files of the current format version (tests/test_golden.py reads them).

Golden files freeze the format: a change that makes an old file decode differently fails the
test. A file once written is never rewritten: to change what the encoder writes in a way
old readers cannot follow, bump `kancoin.bitstream.VERSION` and run this script, which then
adds a new directory beside the old ones. Run on an existing version, it only adds files
for what has none yet: a model family registered since (coded as a small RGB image). It runs
only with KANCOIN_REGEN_GOLDEN=1 (`make golden`).

    KANCOIN_REGEN_GOLDEN=1 .venv/bin/python scripts/make_golden.py
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

import kancoin
from kancoin.bitstream import PRIOR_VERSION, VERSION
from kancoin.models import MODEL_SPECS

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "data" / "golden"


def smooth(height: int, width: int, channels: int) -> np.ndarray:
    """A deterministic smooth image in [0, 1] (no RNG: the same on every numpy)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [
        0.5 + 0.4 * np.sin(6.283 * (0.7 + 0.3 * c) * y / height + 6.283 * x / width + c)
        for c in range(channels)
    ]
    return np.stack(planes, axis=-1).astype(np.float32)


def tone(frames: int, rate: int) -> np.ndarray:
    t = np.arange(frames, dtype=np.float64) / rate
    wave = 0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 660 * t)
    return wave.astype(np.float32)[:, None]


# name -> (signal, keyword options for kancoin.encode); small and quick. Families without a
# case here get "<family>-rgb" (new_family_case).
CASES = {
    "siren-rgb": (smooth(24, 32, 3), {"bpp": 4.0, "model": "siren"}),
    "kan-grey": (smooth(32, 32, 1), {"bpp": 8.0, "model": "kan"}),
    "fourier-rgb": (smooth(24, 32, 3), {"bpp": 4.0, "model": "fourier"}),
    "siren-audio": (tone(4000, 16000), {"kbps": 64.0, "model": "siren", "sample_rate": 16000}),
    "grid1d-audio": (tone(4000, 16000), {"kbps": 64.0, "model": "grid1d", "sample_rate": 16000}),
    # "grid" names model id 22 since the fifth grid session; grid-rgb above it is id 4's
    "grid-raster-rgb": (smooth(48, 64, 3), {"bpp": 8.0, "model": "grid"}),  # with context 8
}


# version 2: files that name a cohort prior (the bundled one, found by its identity)
PRIOR_CASES = {
    "siren-prior-rgb": (smooth(32, 48, 3), {"bpp": 6.0, "prior": "photo"}),
}


def new_family_case(name: str) -> tuple[np.ndarray, dict]:
    return smooth(32, 32, 3), {"bpp": 8.0, "model": name}


def all_cases() -> dict[str, tuple[np.ndarray, dict]]:
    cases = dict(CASES)
    for spec in MODEL_SPECS.values():
        if not any(options.get("model") == spec.name for _, options in cases.values()):
            cases[f"{spec.name}-rgb"] = new_family_case(spec.name)
    return cases


def decoded_digest(data: bytes) -> str:
    """SHA-256 of the decoded output as written: 8-bit pixels, or 16-bit PCM for audio."""
    header, _ = kancoin.read_file(data)
    signal = kancoin.decode(data)
    if header.signal.kind == 1:  # image
        samples = np.clip(np.rint(signal * 255), 0, 255).astype(np.uint8)
    else:
        samples = np.clip(np.rint(signal * 32767), -32768, 32767).astype("<i2")
    return hashlib.sha256(np.ascontiguousarray(samples).tobytes()).hexdigest()


def main() -> int:
    if os.environ.get("KANCOIN_REGEN_GOLDEN") != "1":
        print("make_golden: set KANCOIN_REGEN_GOLDEN=1 to write golden files", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    added = write_version(VERSION, all_cases()) + write_version(PRIOR_VERSION, PRIOR_CASES)
    if not added:
        print(f"make_golden: {GOLDEN} is complete; its files are frozen", file=sys.stderr)
        return 1
    return 0


def write_version(version: int, cases: dict) -> int:
    """Add the files of `cases` that tests/data/golden/v<version> has none of yet."""
    directory = GOLDEN / f"v{version}"
    directory.mkdir(parents=True, exist_ok=True)
    expected_path = directory / "expected.json"
    record = {"version": version, "files": {}}
    if expected_path.exists():
        record = json.loads(expected_path.read_text())
    added = 0
    for name, (signal, options) in cases.items():
        if name in record["files"]:
            continue  # frozen: written by an earlier run, never rewritten
        result = kancoin.encode(signal, steps=40, preset="fast", seed=0, threads=1, **options)
        (directory / f"{name}.inr").write_bytes(result.data)
        record["files"][name] = {
            "file_sha256": hashlib.sha256(result.data).hexdigest(),
            "decoded_sha256": decoded_digest(result.data),
            "model": result.header.spec.describe(),
            "bytes": len(result.data),
            "kancoin": kancoin.__version__,
        }
        expected_path.write_text(json.dumps(record, indent=2) + "\n")  # after each file
        added += 1
        print(f"{name}: {len(result.data)} bytes, {result.header.spec.describe()}")
    return added


if __name__ == "__main__":
    sys.exit(main())
