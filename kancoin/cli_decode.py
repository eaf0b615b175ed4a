"""`kancoin decode`: its own module, importing the codec's decoder, which reads and prices
a file without torch (kancoin.budget), so a file over the decode budget is refused at once;
torch loads only for a decode that goes ahead. kancoin.launch runs it directly; kancoin.cli
adds it to the command group.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from kancoin import budget as decode_budget
from kancoin import decoder
from kancoin.cli_shell import SizeType, read_stdin, run
from kancoin.device import DEVICE_CHOICES
from kancoin.fileio import is_stdio, write_stdout


@click.command(short_help="Render a .inr file as an image or audio at any resolution.")
@click.argument("input_path", metavar="FILE.inr", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Default: FILE.decoded.png or FILE.decoded.wav (never the original's name); "
    "'-' is stdout (PNG or WAV).",
)
@click.option("--scale", type=float, help="Render at S times the resolution or sample rate.")
@click.option("--size", type=SizeType(), help="Images: render at an explicit WIDTHxHEIGHT.")
@click.option("--rate", "sample_rate", type=int, help="Audio: render at an explicit rate in Hz.")
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    help=f"JPEG/WebP output quality (1-100).  [default: {decoder.DEFAULT_LOSSY_QUALITY}]",
)
@click.option(
    "--max-pixels",
    type=int,
    default=decoder.DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse larger outputs, in pixels or audio frames (decompression-bomb guard).",
)
@click.option(
    "--max-work",
    type=float,
    default=float(decode_budget.DEFAULT_MAX_WORK),
    show_default=True,
    help="Refuse decodes costing more multiply-adds (parameters x samples; decode budget).",
)
@click.option(
    "--max-memory",
    type=click.IntRange(min=1),
    default=decode_budget.DEFAULT_MAX_MEMORY >> 20,
    show_default=True,
    help="Refuse decodes needing more working memory, in MiB (decode budget).",
)
@click.option(
    "--prior",
    "prior_name",
    metavar="NAME|PATH",
    help="The cohort prior the file was coded with (default: found by its identity in "
    "$KANCOIN_PRIOR_PATH or the bundled priors).",
)
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="Accepted for symmetry; the result line stays.")
def decode(
    input_path,
    output,
    scale,
    size,
    sample_rate,
    quality,
    max_pixels,
    max_work,
    max_memory,
    prior_name,
    device,
    force,
    quiet,
):
    """Render a .inr file as an image at any resolution, or audio at any sample rate.

    '-' reads the .inr from stdin (then the output defaults to stdout).
    """
    source = read_stdin() if is_stdio(input_path) else input_path
    header, _ = decoder.read_file(source)
    suffix = decoder.default_suffix(header)
    to_stdout = is_stdio(output) or (is_stdio(input_path) and output is None)
    options = dict(
        scale=scale,
        size=size,
        rate=sample_rate,
        max_pixels=max_pixels,
        device=device,
        max_work=max_work,
        max_memory=max_memory << 20,
        prior=prior_name,
    )
    if to_stdout:
        with tempfile.TemporaryDirectory(prefix="kancoin-out-") as directory:
            spooled = Path(directory) / f"stdout{suffix}"
            decoded = decoder.decode(source, spooled, quality=quality, **options)
            write_stdout(spooled.read_bytes())
        shown = "-"
    else:
        output = output or decoder.default_decode_path(input_path, header)
        decoded = decoder.decode(source, output, force=force, quality=quality, **options)
        shown = output
    description = decoder.describe_decoded(
        header,
        decoded,
        scale=scale,
        rate=sample_rate,
        output=None if to_stdout else output,
        quality=quality,
    )
    click.echo(f"{shown}: {description}", err=to_stdout)


def main(argv: list[str] | None = None) -> int:
    """`kancoin decode ARGS` without loading the other commands (kancoin.launch)."""
    return run(decode, argv, prog_name="kancoin decode")
