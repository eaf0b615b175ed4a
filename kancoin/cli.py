"""Command line: a thin shell over kancoin.encode / kancoin.decode / kancoin.read_file.

Errors print one line on stderr and exit with the code of their family (docs/CLI.md).
`kancoin --version` and `kancoin --help` are answered by kancoin.launch without importing
this module (and torch).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from kancoin import batch, decoder, encoder
from kancoin import prior as priors
from kancoin.cli_decode import decode
from kancoin.cli_shell import SizeType, read_stdin, run
from kancoin.config import DEFAULT_BPP, DEFAULT_KBPS, EncodeConfig, TrainingOptions
from kancoin.device import DEVICE_CHOICES
from kancoin.engines import ENGINES, make_engine
from kancoin.errors import UsageError
from kancoin.fileio import is_stdio, write_stdout
from kancoin.fit import SAMPLERS, SamplerOptions, cohort
from kancoin.fit.nint import NINT_MODES
from kancoin.fit.select import STEP_KINDS
from kancoin.fit.trainer import DEFAULT_WARMUP
from kancoin.models import MODEL_SPECS
from kancoin.presets import PRESETS
from kancoin.progress import FitProgress, faster_hint


class BitsType(click.ParamType):
    name = "auto|N"

    def convert(self, value, param, ctx):
        if value is None or value == "auto":
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not 'auto' or an integer", param, ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="kancoin")
def cli() -> None:
    """kancoin: compress images and audio as tiny neural networks (.inr files).

    Exit codes and every option: docs/CLI.md.
    """


cli.add_command(decode)


@cli.command(short_help="Fit networks to images or audio; write .inr files.")
@click.argument(
    "inputs", metavar="INPUT...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="File, or directory for several inputs; '-' is stdout.  [default: INPUT.inr]",
)
@click.option(
    "--psnr",
    type=float,
    help="Quality target in dB (audio: PSNR of the waveform in [0, 1]): stop fitting once it "
    "is reached and spend no more bits than needed; a --bpp/--kbps given too caps the rate.",
)
@click.option(
    "--bpp",
    type=float,
    help="Image rate in bits per pixel, header included; the file never exceeds it."
    f"  [default: {DEFAULT_BPP:g}]",
)
@click.option(
    "--kbps",
    type=float,
    help="Audio rate in kilobits per second, header included; the file never exceeds it."
    f"  [default: {DEFAULT_KBPS:g}]",
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
    help=f"Which coordinates each step trains on (default: {TrainingOptions.sampler}; "
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
@click.option(
    "--threads",
    type=int,
    help="CPU threads (default: 2 for images, 1 for audio, on every machine: the same "
    "input and options give the same bytes; another count may change them).",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Several inputs: files encoded in parallel (processes, or a local Ray cluster's CPUs).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="Several inputs: a local process pool, or a Ray cluster (pip install kancoin[ray]).",
)
@click.option("--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else local).")
@click.option(
    "--step",
    type=click.Choice(STEP_KINDS),
    default="fast",
    show_default=True,
    help="Training step: hand-written/chunked (fast) or plain autograd, for benchmarks.",
)
@click.option("--alpha", is_flag=True, help="Code an alpha channel as a fourth channel.")
@click.option(
    "--prior",
    "prior_name",
    metavar="NAME|PATH",
    help="Cohort prior supplying the first layers (a .kprior, or a name in "
    "$KANCOIN_PRIOR_PATH or the bundled priors; docs/PRIOR.md).",
)
@click.option(
    "--freeze",
    type=int,
    help="With --prior: layers the prior supplies (default: the stable-rank rule's).",
)
@click.option("--no-prior", is_flag=True, help="Code every layer (no cohort prior).")
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Print the plan (model, size, phases, expected rate) and stop, without fitting.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the results.")
@click.option(
    "-f", "--force", is_flag=True, help="Overwrite existing outputs (batches skip them otherwise)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or notes; the result line stays.")
def encode(
    inputs,
    output,
    psnr,
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
    workers,
    engine,
    ray_address,
    step,
    alpha,
    prior_name,
    freeze,
    no_prior,
    plan_only,
    as_json,
    force,
    quiet,
):
    """Fit a network to each INPUT (image, or .wav/.flac audio) and write it as a .inr file.

    Several inputs, or a directory, are a batch: -o names a directory (default: beside each
    input), existing outputs are skipped unless --force, and a file that fails is reported
    without stopping the others. '-' reads stdin and writes stdout.
    """
    rates = {name: value for name, value in (("bpp", bpp), ("kbps", kbps)) if value is not None}
    if no_prior and (prior_name is not None or freeze is not None):
        raise UsageError("--no-prior contradicts --prior and --freeze")
    config = EncodeConfig.of(
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
        psnr=psnr,
        prior=prior_name,
        freeze=freeze,
    )
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {workers}")
    hint = faster_hint(preset, steps=steps, time_budget=time_budget)
    if plan_only:
        if batch.is_batch(inputs, output) or is_stdio(inputs[0]):
            raise UsageError("--plan takes one input file")
        chosen = encoder.plan_encode(inputs[0], config=config)
        click.echo(json.dumps(chosen.summary()) if as_json else chosen.describe())
        return
    if batch.is_batch(inputs, output):
        jobs = batch.plan_jobs(inputs, output, force=force)
        outcome = batch.run_batch(
            jobs,
            config,
            engine=make_engine(engine, workers=workers, threads=threads or 1, address=ray_address),
            cpus=threads or 1,
            force=force,
            show_progress=not quiet,
            hint=hint,
        )
        for line in outcome.lines(as_json=as_json):
            click.echo(line)
        if outcome.failed:
            raise batch.BatchError(outcome)
        return
    if workers > 1:
        raise UsageError("--workers is for several inputs")
    (input_path,) = inputs
    to_stdout = is_stdio(output) or (is_stdio(input_path) and output is None)
    if is_stdio(input_path):
        with _stdin_as_file() as spooled:
            target = None if to_stdout else output
            result = _encode_one(spooled, target, config, force, quiet, hint, name="stdin")
    else:
        target = None if to_stdout else (output or input_path.with_suffix(".inr"))
        result = _encode_one(input_path, target, config, force, quiet, hint, name=input_path.name)
    if to_stdout:
        write_stdout(result.data)
    summary = result.summary()
    summary["input"] = str(input_path)
    if to_stdout:
        summary["output"] = "-"
    line = json.dumps(summary) if as_json else result_line(result, summary)
    click.echo(line, err=to_stdout)  # stdout carries the file then
    if result.target_met is False and not quiet:
        click.echo(
            f"kancoin: note: the target {result.psnr_target:g} dB was not reached "
            f"({result.psnr:.2f} dB); raise the rate cap or the steps",
            err=True,
        )


def _encode_one(source, output, config, force, quiet, hint, *, name: str):
    with FitProgress(name, enabled=not quiet, hint=hint) as progress:
        return encoder.encode(source, output, config=config, progress=progress, force=force)


def result_line(result, summary: dict) -> str:
    """The one line `encode` prints on success (also under -q)."""
    unit = result.header.signal.rate_unit
    snr = f", SNR {_db(summary['snr'])}" if "snr" in summary else ""
    target = ""
    if summary.get("psnr_target") is not None:
        met = "met" if summary["target_met"] else "NOT met"
        target = f", target {summary['psnr_target']:g} dB {met}"
    return (
        f"{summary['output']}: {summary['bytes']} bytes, {summary[unit]:.4f} {unit}, "
        f"PSNR {_db(summary['psnr'])}{snr} (float {_db(summary['psnr_float'])}){target}, "
        f"{summary['model']}, {summary['params']} params, {summary['steps']} steps, "
        f"{summary['seconds']:.1f} s"
    )


def _db(value) -> str:
    """A dB figure for people: None in JSON means infinite (an exact decode)."""
    return "inf (exact)" if value is None else f"{value:.2f} dB"


class _stdin_as_file:
    """Stdin spooled into a temporary file whose suffix tells image from audio (WAV/FLAC by
    their magic bytes), since Pillow and soundfile read files."""

    def __enter__(self) -> Path:
        data = read_stdin()
        suffix = (
            ".wav" if data[:4] in (b"RIFF", b"RF64") else ".flac" if data[:4] == b"fLaC" else ""
        )
        self._dir = tempfile.TemporaryDirectory(prefix="kancoin-stdin-")
        path = Path(self._dir.name) / f"stdin{suffix or '.img'}"
        path.write_bytes(data)
        return path

    def __exit__(self, *exc) -> None:
        self._dir.cleanup()


@cli.command(short_help="Describe a .inr file: signal, model, size, rate, quality.")
@click.argument("input_path", metavar="FILE.inr", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object (infinite dB: null).")
@click.option("--tensors", "all_tensors", is_flag=True, help="Every network's tensors.")
def info(input_path, as_json, all_tensors):
    """Describe a .inr file: signal, model, size, rate, PSNR if recorded."""
    header, payload = decoder.read_file(input_path)
    size = input_path.stat().st_size
    unit = header.signal.rate_unit
    psnr = header.psnr
    exact = psnr is not None and psnr >= decoder.RECORDED_PSNR_MAX
    fields = {
        "file": str(input_path),
        "bytes": size,
        "signal": header.signal.describe(),
        **{k: v for k, v in vars(header.signal).items()},
        unit: round(header.signal.rate(8 * size), 6),
        "psnr": None if exact else psnr,
        "exact": exact,
        "model": header.spec.describe(),
        "model_id": header.spec.model_id,
        "params": header.spec.num_params() * header.networks,
        "prior": None if header.prior is None else header.prior.hex,
        "freeze": 0 if header.prior is None else header.prior.freeze,
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
                header.coded_shapes() * header.networks, header.tensors, strict=True
            )
        ],
    }
    own = header.spec.own_codec()
    if own is not None:  # a family with its own payload reports its rate split
        fields["rate_split"] = own.payload_report(header, payload)
    if as_json:
        click.echo(json.dumps(fields))
        return
    if exact:
        quality = "exact (lossless decode: PSNR infinite)"
    elif psnr is None:
        quality = "unknown"
    else:
        quality = f"{psnr:.2f} dB"
    click.echo(f"{input_path}: kancoin .inr v{header.version}, {fields['signal']}")
    click.echo(
        f"  size    {size} bytes ({fields['header_bytes']} header, "
        f"{fields['payload_bytes']} payload, 4 CRC), {fields[unit]:.4f} {unit}"
    )
    if unit == "kbps":
        click.echo(f"  psnr    {quality} (the waveform mapped to [0, 1])")
        click.echo("  snr     not recorded in the file (measured at encode time: encode --json)")
    else:
        click.echo(f"  psnr    {quality}")
    networks = header.networks
    click.echo(
        f"  model   {fields['model']}, {fields['params']} params"
        + (f" in {networks} networks (one per segment)" if networks > 1 else "")
    )
    if header.prior is not None:
        click.echo(
            f"  prior   {header.prior.hex}: its first {header.prior.freeze} layers, not coded"
        )
    for line in _tensor_lines(header, fields["tensors"], every=all_tensors):
        click.echo(line)
    for name, value in fields.get("rate_split", {}).items():
        click.echo(f"  {name:<24} {value}")


def _tensor_lines(header, tensors: list[dict], *, every: bool) -> list[str]:
    """One line per tensor; for several networks (audio segments) one line per tensor
    position with the range of bit depths over the networks, unless every=True."""
    per = len(header.coded_shapes())
    networks = len(tensors) // max(1, per)

    def bits(t) -> int:
        return t["max_abs"].bit_length() + 1 if t["max_abs"] else 0

    lines = []
    if networks <= 1 or every:
        for index, t in enumerate(tensors):
            prefix = f"n{index // per:<4} " if networks > 1 else ""
            lines.append(
                f"    {prefix}{t['name']:<16} {'x'.join(map(str, t['shape'])):<10} "
                f"{bits(t):>2} bits  {t['family']}"
            )
        return lines
    lines.append(f"  tensors of each of the {networks} networks (bits: min-max; --tensors: all)")
    for position in range(per):
        group = tensors[position::per]
        depths = [bits(t) for t in group]
        families = sorted({t["family"] for t in group})
        t = group[0]
        lines.append(
            f"    {t['name']:<16} {'x'.join(map(str, t['shape'])):<10} "
            f"{min(depths):>2}-{max(depths):<2} bits  {'/'.join(families)}"
        )
    return lines


@cli.command(short_help="Rate-distortion sweep against JPEG2000 and JPEG (resumable).")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--bpp", help="Target rates of images.  [default: 0.1,0.2,0.3,0.5]")
@click.option(
    "--kbps", help="Target rates of audio inputs (WAV/FLAC; docs/AUDIO.md), e.g. 16,32,64."
)
@click.option(
    "--codecs",
    help="Comma-separated, e.g. siren,jpeg2000,jpeg, or 'all'.  [default: all: the kancoin "
    f"models {', '.join(spec.name for spec in MODEL_SPECS.values())}, jpeg2000, jpeg]",
)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Results.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="default", show_default=True)
@click.option("--steps", type=int, help="Training steps per encode (overrides the preset).")
@click.option("--time-budget", type=float, help="Seconds of fitting per encode at most.")
@click.option(
    "--codec-steps", help="Steps per kancoin family, over --steps, e.g. siren=300,grid1d=600."
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Rows in parallel (local pool; with --engine ray, the size of a local cluster).",
)
@click.option(
    "--threads",
    type=int,
    help="Torch threads per row (default: cores/workers; 1 on Ray, one CPU per thread).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where rows run: a local process pool, or a Ray cluster (pip install kancoin[ray]).",
)
@click.option(
    "--ray-address",
    help="Ray cluster to join (default: $RAY_ADDRESS, else a local cluster of --workers CPUs).",
)
@click.option("-f", "--force", is_flag=True, help="Recompute rows already done.")
def rd(
    inputs,
    bpp,
    kbps,
    codecs,
    out,
    preset,
    steps,
    time_budget,
    codec_steps,
    workers,
    threads,
    seed,
    device,
    engine,
    ray_address,
    force,
):
    """Rate-distortion sweep of INPUTS against JPEG2000 and JPEG, or of audio clips against
    MP3 and Opus with --kbps (resumable; docs/RD.md)."""
    from kancoin import rd as rd_sweep

    if bpp is not None and kbps is not None:
        raise UsageError("give --bpp (images) or --kbps (audio), not both")
    audio = kbps is not None
    config = rd_sweep.SweepConfig(
        targets=rd_sweep.sweep.parse_rates(kbps, "--kbps")
        if audio
        else rd_sweep.sweep.parse_rates(bpp or "0.1,0.2,0.3,0.5"),
        audio=audio,
        codecs=rd_sweep.sweep.parse_codecs(codecs),
        preset=preset,
        steps=steps,
        codec_steps=rd_sweep.sweep.parse_codec_steps(codec_steps),
        time_budget=time_budget,
        seed=seed,
        device=device,
        workers=workers,
        threads=threads,
        force=force,
        engine=engine,
        ray_address=ray_address,
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
    return sampler or TrainingOptions.sampler


@cli.group(short_help="Train and inspect cohort priors (.kprior).")
def prior() -> None:
    """Cohort priors: a network body trained on many images, shipped instead of coded
    (docs/PRIOR.md)."""


@prior.command("train", short_help="Train a prior on a cohort of images.")
@click.argument(
    "inputs", metavar="IMAGE...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="NAME.kprior")
@click.option(
    "--method",
    type=click.Choice(cohort.METHODS),
    default="shared",
    show_default=True,
    help="shared: one body, a head per member; reptile: a meta-learned start.",
)
@click.option("--layers", type=int, default=cohort.CohortConfig.layers, show_default=True)
@click.option("--width", type=int, default=cohort.CohortConfig.width, show_default=True)
@click.option("--body", type=int, help="shared: hidden layers in the body (default: all but one).")
@click.option("--steps", type=int, default=cohort.CohortConfig.steps, show_default=True)
@click.option("--batch", type=int, default=cohort.CohortConfig.batch, show_default=True)
@click.option("--lr", type=float, default=cohort.CohortConfig.lr, show_default=True)
@click.option("--crop", type=SizeType(), help="Cut images at least WxH into WxH tiles.")
@click.option(
    "--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress.")
def prior_train(
    inputs, output, method, layers, width, body, steps, batch, lr, crop, dtype, seed, threads,
    force, quiet,
):  # fmt: skip
    """Train a cohort prior on IMAGE... and write it as a .kprior file."""
    import time

    import torch

    from kancoin import prior_train as trainer
    from kancoin.fileio import check_output, write_bytes_atomic

    target = check_output(output, inputs=tuple(inputs), force=force)
    try:
        config = cohort.CohortConfig(
            method=method, layers=layers, width=width, body=body, steps=steps, batch=batch,
            lr=lr, seed=seed,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if threads < 1:
        raise UsageError("--threads must be 1 or more")
    torch.set_num_threads(threads)
    started = time.process_time()

    def report(step: int, total: int, psnr: float) -> None:
        if not quiet:
            click.echo(f"\r{target.name}: step {step}/{total}, {psnr:.2f} dB", nl=False, err=True)

    data, count = trainer.build(
        list(inputs),
        config,
        name=target.name.removesuffix(priors.SUFFIX),
        crop=crop,
        dtype=1 if dtype == "float16" else 2,
        progress=report,
    )
    if not quiet:
        click.echo("", err=True)
    write_bytes_atomic(target, data)
    made = priors.from_bytes(data)
    click.echo(
        f"{target}: {len(data)} bytes, {made.describe()}, {count} members, "
        f"freeze rule {made.rule_freeze()}, {time.process_time() - started:.0f} CPU s"
    )


@prior.command("info", short_help="Describe a .kprior: layers, stable ranks, freeze rule.")
@click.argument("path", metavar="NAME|PATH")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def prior_info(path, as_json):
    """Describe a prior: its network, stored layers and their stable ranks, the freeze depth
    the stable-rank rule picks, and the cohort's checksums."""
    made = priors.find(path)
    ranks = made.stable_ranks()
    fields = {
        "name": made.name,
        "path": None if made.path is None else str(made.path),
        "id": made.id.hex(),
        "sha256": made.sha256.hex(),
        "model": made.spec.describe(),
        "stored_layers": made.stored,
        "dtype": "float16" if made.dtype == 1 else "float32",
        "stable_ranks": [round(r, 3) for r in ranks],
        "freeze_rule": made.rule_freeze(),
        "members": [m.hex() for m in made.members],
    }
    if as_json:
        click.echo(json.dumps(fields))
        return
    click.echo(f"{made.name}: kancoin prior v{priors.VERSION}, id {fields['id']}")
    click.echo(
        f"  model   {fields['model']}, first {made.stored} layers stored ({fields['dtype']})"
    )
    for layer, rank in enumerate(ranks):
        mark = (
            f"  <- highest: the rule freezes layers 0..{layer}"
            if layer + 1 == made.rule_freeze()
            else ""
        )
        shape = "x".join(map(str, made.tensors[2 * layer].shape))
        click.echo(f"    layer{layer:<3} {shape:<8} stable rank {rank:7.3f}{mark}")
    click.echo(f"  cohort  {len(made.members)} members (SHA-256 of their 8-bit pixels)")
    for member in made.members:
        click.echo(f"    {member.hex()}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of raising (tests call this directly)."""
    return run(cli, argv)


if __name__ == "__main__":
    sys.exit(main())
