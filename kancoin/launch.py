"""The `kancoin` command's entry point: answers --version and the top-level --help at once,
without importing the codec (torch alone takes 1.3-3 s to import); runs `decode` from its
own module, which imports torch only once a file is within its decode budget (so a hostile
file is refused in a fraction of a second); hands every other command line to kancoin.cli.

TOP_LEVEL_HELP is click's own text for `kancoin --help`; tests/test_user.py checks that it
still equals what kancoin.cli generates.
"""

from __future__ import annotations

import sys

from kancoin import __version__

TOP_LEVEL_HELP = """\
Usage: kancoin [OPTIONS] COMMAND [ARGS]...

  kancoin: compress images and audio as tiny neural networks (.inr files).

  Exit codes and every option: docs/CLI.md.

Options:
  --version   Show the version and exit.
  -h, --help  Show this message and exit.

Commands:
  decode  Render a .inr file as an image or audio at any resolution.
  encode  Fit networks to images or audio; write .inr files.
  info    Describe a .inr file: signal, model, size, rate, quality.
  prior   Train and inspect cohort priors (.kprior).
  rd      Rate-distortion sweep against JPEG2000 and JPEG (resumable).
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"kancoin, version {__version__}")
        return 0
    if args in ([], ["--help"], ["-h"]):
        print(TOP_LEVEL_HELP, end="")
        return 0
    if args[:1] == ["decode"]:
        from kancoin.cli_decode import main as decode_main

        return decode_main(args[1:])
    from kancoin.cli import main as cli_main

    return cli_main(args)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
