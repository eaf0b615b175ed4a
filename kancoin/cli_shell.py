"""What every kancoin command shares: errors mapped to one line and an exit code, stdin,
option types. Imports neither the codec nor torch, so a command that can answer early (a
decode refused by its budget) does so in a fraction of a second.
"""

from __future__ import annotations

import os
import sys

import click

from kancoin.errors import InputError, KancoinError, UsageError

MAX_STDIN_BYTES = 1 << 30  # no .inr, and no image we encode, comes near

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


class SizeType(click.ParamType):
    name = "WxH"

    def convert(self, value, param, ctx):
        try:
            width, height = (int(v) for v in value.lower().split("x"))
        except ValueError:
            self.fail(f"{value!r} is not WIDTHxHEIGHT", param, ctx)
        if width < 1 or height < 1:
            self.fail("width and height must be positive", param, ctx)
        return width, height


def read_stdin() -> bytes:
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("'-' reads stdin, but stdin is a terminal; pipe a file in")
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise InputError(f"stdin: more than {MAX_STDIN_BYTES} bytes")
    if not data:
        raise InputError("stdin: empty")
    return data


def run(command: click.Command, argv: list[str] | None, prog_name: str = "kancoin") -> int:
    """Run a click command; returns the exit code instead of raising. Every error is one
    line on stderr with its family's exit code (docs/CLI.md)."""
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # one line, not click's usage block
        command = exc.ctx.command_path if exc.ctx is not None else "kancoin"
        click.echo(f"kancoin: error: {exc.format_message()} (see `{command} --help`)", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("kancoin: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("kancoin: interrupted", err=True)
        return EXIT_INTERRUPTED
    except KancoinError as exc:
        click.echo(f"kancoin: error: {exc}", err=True)
        return exc.exit_code
    except MemoryError:
        click.echo("kancoin: error: out of memory", err=True)
        return 1
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("KANCOIN_DEBUG"):
            raise
        click.echo(
            f"kancoin: internal error: {type(exc).__name__}: {exc} "
            "(set KANCOIN_DEBUG=1 for a traceback, and please report it)",
            err=True,
        )
        return EXIT_INTERNAL
    return 0
