"""Finding the Kodak test set: $KODAK_DIR, then ../shared/data/kodak, then a checked download.

Downloads are only for people running `make demo` / `make rd-kodak` without a copy; every
file is verified against the SHA-256 sums shipped in the package. Tests never download.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from importlib import resources
from pathlib import Path

from kancoin.errors import InputError

KODAK_URL = "https://r0k.us/graphics/kodak/kodak/{name}"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kancoin" / "kodak"
REPO_ROOT = Path(__file__).resolve().parent.parent


def kodak_checksums() -> dict[str, str]:
    text = resources.files("kancoin.data").joinpath("kodak.sha256").read_text()
    pairs = (line.split() for line in text.splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def local_kodak_dir() -> Path | None:
    """A directory holding the Kodak PNGs without downloading, or None."""
    candidates = []
    if os.environ.get("KODAK_DIR"):
        candidates.append(Path(os.environ["KODAK_DIR"]))
    candidates += [
        REPO_ROOT.parent / "shared" / "data" / "kodak",
        Path.cwd().parent / "shared" / "data" / "kodak",
        CACHE_DIR,
    ]
    for directory in candidates:
        if (directory / "kodim01.png").is_file():
            return directory
    return None


def kodak_dir(*, download: bool = True, names: list[str] | None = None) -> Path:
    """Where the Kodak images are; downloads (checked) into the cache if allowed."""
    found = local_kodak_dir()
    if found is not None:
        return found
    if os.environ.get("KODAK_DIR"):
        raise InputError(f"KODAK_DIR={os.environ['KODAK_DIR']} holds no kodim01.png")
    if not download:
        raise InputError(
            "Kodak images not found: set KODAK_DIR or put them in ../shared/data/kodak"
        )
    sums = kodak_checksums()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for name in names or sorted(sums):
        _fetch(name, sums[name], CACHE_DIR / name)
    return CACHE_DIR


def kodak_image(name: str = "kodim23.png", *, download: bool = True) -> Path:
    path = kodak_dir(download=download, names=[name]) / name
    if not path.is_file():
        raise InputError(f"{path}: missing from the Kodak directory")
    return path


def _fetch(name: str, digest: str, target: Path) -> None:
    if target.is_file() and _sha256(target.read_bytes()) == digest:
        return
    url = KODAK_URL.format(name=name)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read(16 << 20)
    except OSError as exc:
        raise InputError(f"cannot download {url}: {exc}; set KODAK_DIR instead") from None
    if _sha256(data) != digest:
        raise InputError(f"{url}: checksum mismatch, refusing the download")
    temp = target.with_suffix(".part")
    temp.write_bytes(data)
    temp.replace(target)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
