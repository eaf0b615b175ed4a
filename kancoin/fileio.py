"""Writing outputs safely: never over the input, never half-written, never clobbering.

Every check a path allows is made before any work (a fit can take minutes), and files are
created with the permissions the user's umask gives a new file, like any other tool's output.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from kancoin.errors import OutputError

STDIO = "-"  # the command line's name for stdin (inputs) or stdout (outputs)


def is_stdio(path: str | Path | None) -> bool:
    return path is not None and str(path) == STDIO


def check_output(output: str | Path, *, inputs: tuple[str | Path, ...] = (), force: bool) -> Path:
    """Validate an output path before any work is done: not an input, not a directory, not
    existing (unless `force`), in a directory that exists and that we can create files in."""
    output = Path(output)
    for source in inputs:
        if is_stdio(source):
            continue
        if Path(source).exists() and output.exists() and output.samefile(source):
            raise OutputError(f"{output}: refusing to overwrite the input")
        if Path(source).resolve() == output.resolve():
            raise OutputError(f"{output}: refusing to overwrite the input")
    if output.is_dir():
        raise OutputError(f"{output}: is a directory")
    if output.exists() and not force:
        raise OutputError(f"{output}: already exists (use --force to overwrite)")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"{parent}: no such directory")
    if not parent.is_dir():
        raise OutputError(f"{output}: {parent} is not a directory")
    _probe_writable(output, parent)
    return output


def _probe_writable(output: Path, parent: Path) -> None:
    """Create and remove a temporary file where the output will go: the only test that
    also holds for read-only mounts, /sys, ACLs and root."""
    try:
        fd, temp = tempfile.mkstemp(dir=parent, prefix=f".{output.name}.", suffix=".probe")
    except OSError as exc:
        raise OutputError(f"{output}: cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(temp)


def ensure_directory(path: Path, *, not_a_directory: str) -> Path:
    """`path` as a directory, created with its parents if missing; OutputError when it is a
    file (`not_a_directory` says why that is wrong) or cannot be created."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: {not_a_directory}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create ({exc.strerror or exc})") from None
    return path


@cache
def new_file_mode() -> int:
    """0o666 less the process umask: the mode open() would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(output: str | Path, writer: Callable[[Path], None]) -> None:
    """Run writer(temp_path) next to the output, then rename over it in one step."""
    output = Path(output)
    temp = None
    try:
        fd, temp = tempfile.mkstemp(
            dir=output.parent if str(output.parent) else ".",
            prefix=f".{output.name}.",
            suffix=output.suffix,  # keeps the format Pillow or soundfile infer from the name
        )
        os.close(fd)
        writer(Path(temp))
        os.chmod(temp, new_file_mode())  # mkstemp makes 0600; outputs are the user's files
        os.replace(temp, output)
    except OSError as exc:
        raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    finally:
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def write_bytes_atomic(output: str | Path, data: bytes) -> None:
    write_atomic(output, lambda path: path.write_bytes(data))


def write_stdout(data: bytes) -> None:
    """Bytes to stdout (a pipe or file), for outputs named `-`."""
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise OutputError("stdout: the reading end of the pipe closed") from None
    except OSError as exc:
        raise OutputError(f"stdout: cannot write ({exc.strerror or exc})") from None
