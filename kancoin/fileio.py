"""Writing outputs safely: never over the input, never half-written, never clobbering."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from kancoin.errors import OutputError


def check_output(output: str | Path, *, inputs: tuple[str | Path, ...] = (), force: bool) -> Path:
    """Validate an output path before any work is done."""
    output = Path(output)
    for source in inputs:
        if Path(source).exists() and output.exists() and output.samefile(source):
            raise OutputError(f"{output}: refusing to overwrite the input")
        if Path(source).resolve() == output.resolve():
            raise OutputError(f"{output}: refusing to overwrite the input")
    if output.is_dir():
        raise OutputError(f"{output}: is a directory")
    if output.exists() and not force:
        raise OutputError(f"{output}: already exists (use --force to overwrite)")
    if not output.parent.exists() and str(output.parent) not in ("", "."):
        raise OutputError(f"{output.parent}: no such directory")
    return output


def write_atomic(output: str | Path, writer: Callable[[Path], None]) -> None:
    """Run writer(temp_path) next to the output, then rename over it in one step."""
    output = Path(output)
    fd, temp = tempfile.mkstemp(
        dir=output.parent if str(output.parent) else ".",
        prefix=f".{output.name}.",
        suffix=output.suffix,  # keeps the format Pillow or soundfile infer from the name
    )
    os.close(fd)
    try:
        writer(Path(temp))
        os.replace(temp, output)
    except OSError as exc:
        raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def write_bytes_atomic(output: str | Path, data: bytes) -> None:
    write_atomic(output, lambda path: path.write_bytes(data))
