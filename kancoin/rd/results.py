"""Per-image rows (append-only JSONL, the resume state) and CompressAI-style curves.

Each finished (image, codec, target, settings) row is appended as one line in one write,
under a file lock, as soon as it is measured; an interrupted sweep loses at most the rows in
flight. Reading skips a torn last line, and a later row for the same key wins (--force).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: one writer per file is still safe
    fcntl = None

ROWS_FILE = "rows.jsonl"
METRICS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")
ROW_FIELDS = {  # CompressAI name -> row field
    "bpp": "bpp",
    "psnr-rgb": "psnr",
    "ms-ssim-rgb": "ms_ssim",
    "encoding_time": "encoding_time",
    "decoding_time": "decoding_time",
}

# audio rows (kancoin.rd.sweep, --kbps): the clip instead of the image, kbps instead of bpp
AUDIO_METRICS = (
    "kbps",
    "psnr",
    "snr",
    "lsd",
    "boundary_psnr",
    "boundary_excess_db",
    "encoding_time",
    "decoding_time",
)
AUDIO_ROW_FIELDS = {metric: metric for metric in AUDIO_METRICS}

Key = tuple[str, str, str, str, str]


def row_key(image: str, image_sha256: str, codec: str, target_bpp: float, settings: dict) -> Key:
    return (image, image_sha256, codec, f"{target_bpp:.6g}", json.dumps(settings, sort_keys=True))


def key_of(row: dict) -> Key:
    if "clip" in row:  # an audio row
        return row_key(
            row["clip"], row["clip_sha256"], row["codec"], row["target_kbps"], row["settings"]
        )
    return row_key(
        row["image"], row["image_sha256"], row["codec"], row["target_bpp"], row["settings"]
    )


def append_row(path: Path, row: dict) -> None:
    """Append one JSON line atomically with respect to other workers."""
    line = (json.dumps(row, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _ends_torn(path):
            line = b"\n" + line  # an interrupted write left half a line: do not glue onto it
        os.write(fd, line)
    finally:
        os.close(fd)  # also releases the lock


def load_rows(path: Path) -> dict[Key, dict]:
    """Every complete row by key; later lines replace earlier ones."""
    rows: dict[Key, dict] = {}
    if not path.is_file():
        return rows
    with path.open("rb") as handle:
        for raw in handle:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                row = json.loads(raw)
                rows[key_of(row)] = row
    return rows


def curve(
    rows: Iterable[dict], targets: Iterable[float], images: int, *, audio: bool = False
) -> tuple[dict, list]:
    """CompressAI `results` (means per target) over targets every image has a result for.

    Returns (results, skipped targets). Means of per-image values, as CompressAI reports;
    the rows keep what is needed for other conventions (e.g. PSNR of the mean MSE).
    Audio rows (`audio`) give kbps, PSNR, SNR, LSD and the boundary measures instead.
    """
    target_field = "target_kbps" if audio else "target_bpp"
    fields = AUDIO_ROW_FIELDS if audio else ROW_FIELDS
    by_target: dict[str, list[dict]] = {}
    for row in rows:
        if "error" not in row:
            by_target.setdefault(f"{row[target_field]:.6g}", []).append(row)
    results: dict[str, list] = {metric: [] for metric in fields}
    skipped = []
    for target in sorted(targets):
        done = by_target.get(f"{target:.6g}", [])
        if len(done) < images:
            skipped.append(target)
            continue
        for metric, field in fields.items():
            results[metric].append(_mean([row.get(field) for row in done]))
    return results, skipped


def _mean(values: list) -> float | None:
    if any(v is None for v in values):
        return None  # e.g. MS-SSIM of images too small for 5 scales
    return math.fsum(values) / len(values)


def _ends_torn(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


def write_json(path: Path, data: dict) -> None:
    from kancoin.fileio import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
