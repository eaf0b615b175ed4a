"""Command line: a thin shell over kancoin.encode / kancoin.decode / kancoin.read_file.

Errors print one line on stderr and exit with the code of their family (docs/CLI.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from kancoin import codec
from kancoin.device import DEVICE_CHOICES
from kancoin.errors import KancoinError
from kancoin.fit import SAMPLERS, SamplerOptions
from kancoin.fit.nint import NINT_MODES
from kancoin.fit.select import STEP_KINDS
from kancoin.fit.trainer import DEFAULT_WARMUP
from kancoin.models import MODEL_SPECS
from kancoin.presets import PRESETS
from kancoin.progress import FitProgress

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


class BitsType(click.ParamType):
    name = "auto|N"

    def convert(self, value, param, ctx):
        if value is None or value == "auto":
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not 'auto' or an integer", param, ctx)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kancoin")
def cli() -> None:
    """kancoin: compress images and audio as tiny neural networks (.inr files)."""


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Default: INPUT.inr")
@click.option(
    "--bpp",
    type=float,
    help="Image rate in bits per pixel, header included; the file never exceeds it."
    f"  [default: {codec.DEFAULT_BPP:g}]",
)
@click.option(
    "--kbps",
    type=float,
    help="Audio rate in kilobits per second, header included; the file never exceeds it."
    f"  [default: {codec.DEFAULT_KBPS:g}]",
)
@click.option(
    "--bits",
    type=BitsType(),
    default="auto",
    show_default=True,
    help="Bit depth per weight, or auto (rate-distortion allocation per tensor).",
)
@click.option(
    "--model",
    type=click.Choice([spec.name for spec in MODEL_SPECS.values()]),
    default="siren",
    show_default=True,
)
@click.option("--layers", type=int, help="Hidden layers (overrides the rate-based choice).")
@click.option("--width", type=int, help="Units per layer (with --layers).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="default", show_default=True)
@click.option("--steps", type=int, help="Training steps (overrides the preset).")
@click.option("--time-budget", type=float, help="Seconds of fitting at most.")
@click.option(
    "--segment", type=float, help="Audio: seconds per network (default: 8 kbit of the rate)."
)
@click.option(
    "--sampler",
    type=click.Choice(list(SAMPLERS)),
    help=f"Which coordinates each step trains on (default: {codec.EncodeConfig.sampler}; "
    "nint: NTK-guided, as published; docs/SAMPLING.md).",
)
@click.option(
    "--nint-mode",
    type=click.Choice(NINT_MODES),
    help="With --sampler nint: the published method (paper, the default) or kancoin's "
    "importance batches with NTK leverage.",
)
@click.option(
    "--batch-fraction",
    type=float,
    help="Share of coordinates per step (default: the preset's, 2.5 % for SIREN images).",
)
@click.option("--lr", type=float, help="Peak learning rate (default: the preset's).")
@click.option(
    "--qat-steps",
    type=int,
    help="Quantization-aware fine-tuning steps after the bit allocation (default: 10 % of "
    "the fit's for SIREN images, none for KAN and audio).",
)
@click.option(
    "--warmup",
    type=float,
    default=DEFAULT_WARMUP,
    show_default=True,
    help="Share of the fit over which the learning rate ramps up (0: none).",
)
@click.option(
    "--l1",
    type=float,
    default=0.0,
    show_default=True,
    help="Rate-aware penalty: this weight times the mean |w| is added to the MSE.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("--threads", type=int, help="CPU threads (default: all cores).")
@click.option(
    "--step",
    type=click.Choice(STEP_KINDS),
    default="fast",
    show_default=True,
    help="Training step: hand-written/chunked (fast) or plain autograd, for benchmarks.",
)
@click.option("--alpha", is_flag=True, help="Code an alpha channel as a fourth channel.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the results.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def encode(
    input_path,
    output,
    bpp,
    kbps,
    bits,
    model,
    layers,
    width,
    preset,
    steps,
    time_budget,
    segment,
    sampler,
    nint_mode,
    batch_fraction,
    lr,
    qat_steps,
    warmup,
    l1,
    seed,
    device,
    threads,
    step,
    alpha,
    as_json,
    force,
    quiet,
):
    """Fit a network to INPUT (image, or .wav/.flac audio) and write it as a .inr file."""
    output = output or input_path.with_suffix(".inr")
    rates = {name: value for name, value in (("bpp", bpp), ("kbps", kbps)) if value is not None}
    config = codec.EncodeConfig(
        **rates,
        bits=bits,
        model=model,
        layers=layers,
        width=width,
        preset=preset,
        steps=steps,
        time_budget=time_budget,
        segment_seconds=segment,
        sampler=_sampler(sampler, nint_mode),
        sampler_options=SamplerOptions(nint_mode=nint_mode or SamplerOptions.nint_mode),
        batch_fraction=batch_fraction,
        lr=lr,
        qat_steps=qat_steps,
        warmup=warmup,
        l1=l1,
        seed=seed,
        device=device,
        threads=threads,
        keep_alpha=alpha,
        step=step,
    )
    with FitProgress(f"fitting {input_path.name}", enabled=not quiet) as progress:
        result = codec.encode(input_path, output, config=config, progress=progress, force=force)
    summary = result.summary()
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet:
        unit = result.header.signal.rate_unit
        snr = f", SNR {summary['snr']:.2f} dB" if "snr" in summary else ""
        click.echo(
            f"{summary['output']}: {summary['bytes']} bytes, {summary[unit]:.4f} {unit}, "
            f"PSNR {summary['psnr']:.2f} dB{snr} (float {summary['psnr_float']:.2f} dB), "
            f"{summary['model']}, {summary['params']} params, {summary['steps']} steps, "
            f"{summary['seconds']:.1f} s"
        )


@cli.command()
@click.argument("input_path", metavar="FILE.inr", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Default: FILE.png or FILE.wav"
)
@click.option("--scale", type=float, help="Render at S times the resolution or sample rate.")
@click.option("--size", type=SizeType(), help="Images: render at an explicit WIDTHxHEIGHT.")
@click.option("--rate", "sample_rate", type=int, help="Audio: render at an explicit rate in Hz.")
@click.option(
    "--max-pixels",
    type=int,
    default=codec.DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse larger outputs, in pixels or audio frames (decompression-bomb guard).",
)
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True)
def decode(input_path, output, scale, size, sample_rate, max_pixels, device, force, quiet):
    """Render a .inr file as an image at any resolution, or audio at any sample rate."""
    header, _ = codec.read_file(input_path)
    output = output or input_path.with_suffix(codec.default_suffix(header))
    decoded = codec.decode(
        input_path,
        output,
        scale=scale,
        size=size,
        rate=sample_rate,
        max_pixels=max_pixels,
        device=device,
        force=force,
    )
    if not quiet:
        description = codec.describe_decoded(header, decoded, scale=scale, rate=sample_rate)
        click.echo(f"{output}: {description}")


@cli.command()
@click.argument("input_path", metavar="FILE.inr", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def info(input_path, as_json):
    """Describe a .inr file: signal, model, size, rate, PSNR if recorded."""
    header, _ = codec.read_file(input_path)
    size = input_path.stat().st_size
    unit = header.signal.rate_unit
    fields = {
        "file": str(input_path),
        "bytes": size,
        "signal": header.signal.describe(),
        **{k: v for k, v in vars(header.signal).items()},
        unit: round(header.signal.rate(8 * size), 6),
        "psnr": header.psnr,
        "model": header.spec.describe(),
        "model_id": header.spec.model_id,
        "params": header.spec.num_params() * header.networks,
        "networks": header.networks,
        "payload_bytes": 4 * header.payload_words,
        "header_bytes": size - 4 * header.payload_words - 4,
        "tensors": [
            {
                "name": name,
                "shape": list(shape),
                "step_index": t.step_index,
                "family": t.entropy.family.name.lower(),
                "max_abs": t.entropy.max_abs,
            }
            for (name, shape), t in zip(
                header.spec.tensor_shapes() * header.networks, header.tensors, strict=True
            )
        ],
    }
    if as_json:
        click.echo(json.dumps(fields))
        return
    psnr = "unknown" if header.psnr is None else f"{header.psnr:.2f} dB"
    click.echo(f"{input_path}: kancoin .inr v1, {fields['signal']}")
    click.echo(
        f"  size    {size} bytes ({fields['header_bytes']} header, "
        f"{fields['payload_bytes']} payload, 4 CRC), {fields[unit]:.4f} {unit}"
    )
    click.echo(f"  psnr    {psnr}")
    click.echo(f"  model   {fields['model']}, {fields['params']} params")
    for t in fields["tensors"]:
        bits = t["max_abs"].bit_length() + 1 if t["max_abs"] else 0
        click.echo(
            f"    {t['name']:<16} {'x'.join(map(str, t['shape'])):<10} "
            f"{bits:>2} bits  {t['family']}"
        )


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--bpp", default="0.1,0.2,0.3,0.5", show_default=True, help="Target rates.")
@click.option(
    "--codecs",
    help="Comma-separated, from: "
    + ", ".join([*(spec.name for spec in MODEL_SPECS.values()), "jpeg2000", "jpeg"])
    + " (default: all).",
)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Results.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="default", show_default=True)
@click.option("--steps", type=int, help="Training steps per encode (overrides the preset).")
@click.option("--time-budget", type=float, help="Seconds of fitting per encode at most.")
@click.option("--workers", type=int, default=1, show_default=True, help="Images in parallel.")
@click.option("--threads", type=int, help="Torch threads per worker (default: cores/workers).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option("-f", "--force", is_flag=True, help="Recompute rows already done.")
def rd(inputs, bpp, codecs, out, preset, steps, time_budget, workers, threads, seed, device, force):
    """Rate-distortion sweep of INPUTS against JPEG2000 and JPEG (resumable; docs/RD.md)."""
    from kancoin import rd as rd_sweep

    config = rd_sweep.SweepConfig(
        targets=rd_sweep.sweep.parse_rates(bpp),
        codecs=rd_sweep.sweep.parse_codecs(codecs),
        preset=preset,
        steps=steps,
        time_budget=time_budget,
        seed=seed,
        device=device,
        workers=workers,
        threads=threads,
        force=force,
    )
    summary = rd_sweep.run_sweep(inputs, out, config)
    click.echo(rd_sweep.format_summary(summary))


def _sampler(sampler: str | None, nint_mode: str | None) -> str:
    """The sampler asked for; `--nint-mode` alone is the 0.2 spelling of `--sampler nint`."""
    if sampler is None and nint_mode is not None:
        click.echo(
            "kancoin: note: --nint-mode without --sampler is deprecated; it now means "
            "--sampler nint --nint-mode " + nint_mode,
            err=True,
        )
        return "nint"
    if sampler == "nint" and nint_mode is None:
        click.echo(
            "kancoin: note: since 0.3 --sampler nint is NINT as published (NTK-guided, 20 % "
            "batches); 0.2's residual importance sampler is --sampler importance, the default",
            err=True,
        )
    return sampler or codec.EncodeConfig.sampler


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of raising (tests call this directly)."""
    try:
        cli.main(args=argv, prog_name="kancoin", standalone_mode=False)
    except click.exceptions.Exit as exc:
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


if __name__ == "__main__":
    sys.exit(main())
