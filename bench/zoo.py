"""The model zoo on one footing: every registered family on Kodak images and a speech clip.

Per family and signal (INR-Bench's comparison, plus what a codec needs):
  - quality at an equal parameter count and an equal step count (float network, the same
    batch share for every family): PSNR on the images, SNR on the speech;
  - with --seconds T, the same at an equal fitting time instead (labelled with the load);
  - the loss of quantizing every coded tensor at 8 and at 10 bits (uniform per tensor);
  - the real file: `kancoin.encode` at 0.3 bpp (images) and 32 kbps (audio), PSNR/SNR of the
    decoded 8-bit image / 16-bit clip, rate from the bytes;
  - the importance sampler's time-to-quality gain over uniform batches: both runs reach
    q = the lower of their two best PSNRs; gain = uniform's time (and steps) to q over
    importance's (> 1: importance is faster). Steps are load-free; seconds are not.

The default protocol (2 Kodak images at half size, 2 s of speech, 200/300 steps) runs in
well under 30 minutes on 2 cores; --downscale 1 --steps 2000 --audio-seconds 8 is longer.

    python bench/zoo.py                                  # writes bench/results/zoo/
    python bench/zoo.py --families siren,kan,ffn --images kodim15 --steps 100   # a quick look
    python bench/zoo.py --seconds 30 --out bench/results/zoo-equal-time   # equal fitting time
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import kancoin
from kancoin import adapters, allocation, audio
from kancoin.config import EncodeConfig
from kancoin.datasets import kodak_image
from kancoin.fit import FitConfig, fit
from kancoin.models import MODEL_SPECS
from kancoin.presets import get_preset
from kancoin.signals import load_image, psnr, psnr_from_mse

REPO = Path(__file__).resolve().parent.parent
SPEECH = REPO.parent / "shared" / "data" / "audio" / "librispeech_1995-1837-0001_16k.wav"
BIT_DEPTHS = (8, 10)
IMAGE_BATCH = 0.1  # every family, images: ~10k of a half-size Kodak image (INR-Bench: 8192)
IMAGE_LOW_BAND = 0.1  # cycles per pixel: the low/high split of band_snrs (Nyquist 0.5)
LOW_BAND_HZ = 1000.0  # speech: the low/high split of band_snrs
EVALS = 10  # full-signal evaluations per fit: the resolution of time-to-quality


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # coordinate networks fitted by the shared trainer; families with their own trainer and
    # payload (own_codec(): the latent grid) are compared by their own bench (bench/grid.py)
    coordinate = [s.name for s in MODEL_SPECS.values() if s.own_codec() is None]
    parser.add_argument("--families", default=",".join(coordinate))
    parser.add_argument("--images", default="kodim15,kodim23", help="Kodak names")
    parser.add_argument("--downscale", type=int, default=2, help="1 = full 768x512")
    parser.add_argument("--audio", type=Path, default=SPEECH, help="'' to skip audio")
    parser.add_argument("--audio-start", type=float, default=1.0, help="seconds into the clip")
    parser.add_argument("--audio-seconds", type=float, default=2.0)
    parser.add_argument("--params", type=int, default=4000, help="per image network")
    parser.add_argument("--audio-params", type=int, default=1000, help="per audio segment")
    parser.add_argument("--steps", type=int, default=200, help="images, every fit")
    parser.add_argument("--audio-steps", type=int, default=300, help="per audio segment")
    parser.add_argument("--seconds", type=float, help="equal fitting time per fit instead")
    parser.add_argument("--bpp", type=float, default=0.3)
    parser.add_argument("--kbps", type=float, default=32.0)
    parser.add_argument("--sampler", default="importance", help="against uniform batches")
    parser.add_argument(
        "--skip-uniform", action="store_true", help="no uniform-batch runs (no sampler gain)"
    )
    parser.add_argument("--preset", default="fast", help="learning rate (x family's scale)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread each")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "zoo")
    args = parser.parse_args(argv)

    families = args.families.split(",")
    unknown = [f for f in families if f not in {s.name for s in MODEL_SPECS.values()}]
    if unknown:
        parser.error(f"unknown families {unknown}")
    signals = [f"image:{name}" for name in args.images.split(",") if name]
    if str(args.audio):
        if not Path(args.audio).is_file():
            print(f"zoo: {args.audio} is missing; skipping audio", file=sys.stderr)
        else:
            signals.append("audio:speech")
    # slow families first, so the last jobs to finish are short ones
    jobs = [(f, s) for f in families for s in signals]
    jobs.sort(key=lambda job: (not job[0].startswith("kan"), job[1].startswith("audio")))
    load_before = os.getloadavg()
    started = time.perf_counter()
    print(
        f"zoo: {len(families)} families x {len(signals)} signals, {args.workers} workers, "
        f"load {load_before[0]:.2f}",
        flush=True,
    )
    rows = []
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers, initializer=_worker_init) as pool:
        for row in pool.imap_unordered(_run_job, [(f, s, args) for f, s in jobs]):
            rows.append(row)
            print(_progress_line(row), flush=True)
            args.out.mkdir(parents=True, exist_ok=True)  # what is done survives an abort
            (args.out / "zoo.partial.json").write_text(json.dumps(rows, indent=1) + "\n")
    meta = {
        "command": "python bench/zoo.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "kancoin": kancoin.__version__,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    order = {name: i for i, name in enumerate(families)}
    rows.sort(key=lambda r: (order[r["family"]], r["signal"]))
    write_outputs(args.out, meta, rows, families)
    (args.out / "zoo.partial.json").unlink(missing_ok=True)
    return 0


def _worker_init() -> None:
    torch.set_num_threads(1)


def _progress_line(row: dict) -> str:
    equal = row["equal"]
    return (
        f"  {row['family']:<12} {row['signal']:<14} {equal['metric']} {equal['value']:.2f} dB "
        f"({row['spec']}, {row['seconds']:.0f} s)"
    )


# signals


def load_signal(signal: str, args) -> tuple[np.ndarray, int | None]:
    kind, name = signal.split(":")
    if kind == "image":
        image = load_image(kodak_image(f"{name}.png", download=False))
        if args.downscale > 1:
            pixels = Image.fromarray(np.rint(image * 255).astype(np.uint8))
            size = (pixels.width // args.downscale, pixels.height // args.downscale)
            resized = pixels.resize(size, Image.Resampling.LANCZOS)
            image = np.asarray(resized, dtype=np.float32) / 255
        return image, None
    samples, rate = audio.load_audio(args.audio)
    start = round(args.audio_start * rate)
    return samples[start : start + round(args.audio_seconds * rate)], rate


# one (family, signal)


def _run_job(job) -> dict:
    family, signal, args = job
    started, cpu_started = time.perf_counter(), time.process_time()
    data, sample_rate = load_signal(signal, args)
    is_audio = sample_rate is not None
    config = EncodeConfig.of(model=family, kbps=args.kbps if is_audio else None, bpp=None)
    kind = adapters.for_source(data, config, sample_rate=sample_rate)
    base = kind.base_spec(config)
    target = args.audio_params if is_audio else args.params
    spec = base.size_for(
        float(target),
        overhead_bits=lambda s: 0.0,
        bits_per_param=1.0,
        max_layers=kind.max_layers(get_preset(args.preset)),
    )
    fraction = adapters.AUDIO_BATCH_FRACTION if is_audio else IMAGE_BATCH
    steps = None if args.seconds else (args.audio_steps if is_audio else args.steps)
    runs = {}
    samplers = (args.sampler,) if args.skip_uniform else ("uniform", args.sampler)
    for sampler in samplers:
        models, history, fit_seconds, rollbacks = fit_all(
            kind, spec, args, sampler, fraction, steps
        )
        runs[sampler] = {
            "models": models,
            "history": history,
            "fit_seconds": fit_seconds,
            "rollbacks": rollbacks,
            **measure(kind, models, data),
        }
    main_run = runs[args.sampler]
    quantized = {}
    for bits in BIT_DEPTHS:
        quantized[bits] = quantized_loss(kind, main_run["models"], data, bits, main_run)
    real = real_file(data, sample_rate, family, args, steps, fraction)
    metric = "snr" if is_audio else "psnr"
    return {
        "family": family,
        "signal": signal,
        "spec": spec.describe(),
        "params": spec.num_params() * kind.info.networks,
        "networks": kind.info.networks,
        "equal": {
            "metric": metric,
            "value": main_run[metric],
            "psnr": main_run["psnr"],
            "steps": steps,
            "seconds": args.seconds,
            "fit_seconds": round(main_run["fit_seconds"], 2),
            "uniform": runs["uniform"][metric] if "uniform" in runs else None,
            "snr_low": main_run["snr_low"],
            "snr_high": main_run["snr_high"],
            "rollbacks": sum(run["rollbacks"] for run in runs.values()),
            "history": [[round(x, 3) for x in p] for p in main_run["history"]],
            "uniform_history": [
                [round(x, 3) for x in p] for p in runs.get("uniform", {}).get("history", [])
            ],
        },
        "quantization_loss": quantized,
        "real_file": real,
        "sampler_gain": sampler_gain(runs["uniform"]["history"], main_run["history"])
        if "uniform" in runs
        else {},
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),  # a load-free cost
    }


def fit_all(kind, spec, args, sampler: str, fraction: float, steps: int | None):
    """Fit one network per part; (models, combined history [(steps, s, psnr)], seconds)."""
    preset = get_preset(args.preset)
    torch.manual_seed(args.seed)
    models = [spec.build() for _ in range(kind.info.networks)]
    histories, total, rollbacks = [], 0.0, 0
    budget = None if args.seconds is None else args.seconds / kind.info.networks
    for index, model in enumerate(models):
        part = kind.part(index, torch.device("cpu"))
        config = FitConfig(
            steps=steps,
            time_budget=budget,
            lr=preset.lr * spec.lr_scale,
            sampler=sampler,
            batch_fraction=fraction,
            evals=EVALS,
            seed=args.seed + index,
        )
        result = fit(model, part.coords, part.targets, config)
        histories.append((part.weight, result.history))
        total += result.seconds
        rollbacks += result.rollbacks
    return models, combine_histories(histories), total, rollbacks


def combine_histories(histories) -> list[tuple[int, float, float]]:
    """Parts are fitted one after another: at evaluation k, the whole signal has taken the
    sum of the parts' steps and seconds, and its MSE is the weighted sum of theirs."""
    length = min(len(h) for _, h in histories)
    combined = []
    for k in range(length):
        steps = sum(h[k][0] for _, h in histories)
        seconds = sum(h[k][1] for _, h in histories)
        mse = sum(w * 10 ** (-h[k][2] / 10) for w, h in histories)
        combined.append((steps, seconds, psnr_from_mse(mse)))
    return combined


def render_signal(kind, models) -> np.ndarray:
    """The signal at its own size (SignalKind.output_size: a tuple for every kind)."""
    size = kind.output_size(scale=None, size=None, rate=None, max_samples=kind.info.samples)
    return kind.render(models, size, torch.device("cpu"))


def measure(kind, models, data) -> dict:
    """PSNR (and SNR for audio) of the float render, as the codec defines them, and the
    SNR in a low and a high frequency band (band_snrs)."""
    out = render_signal(kind, models)
    if isinstance(kind, adapters.AudioKind):
        return {
            "psnr": psnr(original=audio.to_unit(data), reconstruction=audio.to_unit(out)),
            "snr": audio.snr(original=data, reconstruction=out),
            **band_snrs(data, out, sample_rate=kind.info.sample_rate),
        }
    return {"psnr": psnr(original=data, reconstruction=out), **band_snrs(data, out)}


def band_snrs(original: np.ndarray, reconstruction: np.ndarray, sample_rate=None) -> dict:
    """Signal-to-error energy (dB) below and above a cut: for images, 0.1 cycles per pixel
    (radially); for audio, LOW_BAND_HZ. The DC term is left out. A network with a strong
    low-frequency bias has a far lower high-band than low-band SNR."""
    error = original.astype(np.float64) - reconstruction
    if sample_rate is None:
        spectrum = np.abs(np.fft.fft2(original.astype(np.float64), axes=(0, 1))) ** 2
        residual = np.abs(np.fft.fft2(error, axes=(0, 1))) ** 2
        fy = np.fft.fftfreq(original.shape[0])[:, None]
        fx = np.fft.fftfreq(original.shape[1])[None, :]
        radius = np.sqrt(fx**2 + fy**2)[..., None] * np.ones(original.shape[2])
        low = (radius > 0) & (radius <= IMAGE_LOW_BAND)
        high = radius > IMAGE_LOW_BAND
    else:
        spectrum = np.abs(np.fft.rfft(original.astype(np.float64), axis=0)) ** 2
        residual = np.abs(np.fft.rfft(error, axis=0)) ** 2
        freq = np.fft.rfftfreq(original.shape[0], 1.0 / sample_rate)[:, None]
        freq = freq * np.ones(original.shape[1])
        low = (freq > 0) & (freq <= LOW_BAND_HZ)
        high = freq > LOW_BAND_HZ
    return {
        "snr_low": float(10 * np.log10(spectrum[low].sum() / max(residual[low].sum(), 1e-30))),
        "snr_high": float(10 * np.log10(spectrum[high].sum() / max(residual[high].sum(), 1e-30))),
    }


def quantized_loss(kind, models, data, bits: int, float_run: dict) -> dict:
    """Every coded tensor uniformly at `bits` signed bits: dB lost, and coded bits/param."""
    originals = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    payload, params = 0.0, 0
    for model in models:
        chosen = allocation.uniform_bits(model, bits)
        allocation.load_quantized(model, chosen)
        payload += chosen.payload_bits
        params += sum(t.numel() for t in model.coded_tensors())
    measured = measure(kind, models, data)
    for model, state in zip(models, originals, strict=True):
        model.load_state_dict(state)
    metric = "snr" if isinstance(kind, adapters.AudioKind) else "psnr"
    return {
        "loss_db": round(float_run[metric] - measured[metric], 4),
        "bits_per_param": round(payload / params, 3),
    }


def real_file(data, sample_rate, family: str, args, steps, fraction: float) -> dict:
    """kancoin.encode at the rate target: the decoded output of the real bytes."""
    options = {"kbps": args.kbps} if sample_rate else {"bpp": args.bpp}
    try:
        result = kancoin.encode(
            data,
            model=family,
            preset=args.preset,
            steps=steps,
            time_budget=args.seconds,
            batch_fraction=None if sample_rate else fraction,
            seed=args.seed,
            threads=1,
            sample_rate=sample_rate,
            **options,
        )
    except kancoin.KancoinError as exc:
        return {"error": str(exc)}
    row = {
        "psnr": round(result.psnr, 4),
        "rate": round(result.rate, 4),
        "unit": result.header.signal.rate_unit,
        "bytes": result.num_bytes,
        "model": result.header.spec.describe(),
        "params": result.header.spec.num_params() * result.header.networks,
    }
    if result.snr is not None:
        row["snr"] = round(result.snr, 4)
    return row


def time_to(history, quality: float) -> tuple[float, float] | None:
    """(steps, seconds) at which the history first reaches `quality`, interpolated linearly
    between evaluations; None if it never does."""
    previous = (0, 0.0, -math.inf)
    for point in history:
        if point[2] >= quality:
            if not math.isfinite(previous[2]):
                return float(point[0]), point[1]
            share = (quality - previous[2]) / max(point[2] - previous[2], 1e-12)
            return (
                previous[0] + share * (point[0] - previous[0]),
                previous[1] + share * (point[1] - previous[1]),
            )
        previous = point
    return None


def sampler_gain(uniform, sampled) -> dict:
    best_u = max(p[2] for p in uniform)
    best_s = max(p[2] for p in sampled)
    quality = min(best_u, best_s)
    reach_u, reach_s = time_to(uniform, quality), time_to(sampled, quality)
    gain = {"quality_db": round(quality, 3), "psnr_gain_db": round(best_s - best_u, 3)}
    if reach_u and reach_s and reach_s[0] > 0 and reach_s[1] > 0:
        gain["step_gain"] = round(reach_u[0] / reach_s[0], 3)
        gain["time_gain"] = round(reach_u[1] / reach_s[1], 3)
    return gain


# outputs


def write_outputs(out: Path, meta: dict, rows: list[dict], families: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "zoo.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    table = markdown(meta, rows, families)
    (out / "zoo.md").write_text(table)
    print("\n" + table)
    try:
        plot(out / "zoo.png", rows, families)
    except ImportError:
        print("zoo: no matplotlib; no plot", file=sys.stderr)


def _mean(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def summarise(rows: list[dict], family: str) -> dict:
    images = [r for r in rows if r["family"] == family and r["signal"].startswith("image")]
    speech = [r for r in rows if r["family"] == family and r["signal"].startswith("audio")]

    def real(rs, key):
        return _mean(r["real_file"].get(key) for r in rs)

    def gain(rs, key):
        return _mean(r["sampler_gain"].get(key) for r in rs)

    return {
        "params": images[0]["params"] if images else None,
        "image_psnr": _mean(r["equal"]["value"] for r in images),
        "image_uniform": _mean(r["equal"]["uniform"] for r in images),
        "image_fit_s": _mean(r["equal"]["fit_seconds"] for r in images),
        "speech_snr": _mean(r["equal"]["value"] for r in speech),
        "speech_fit_s": _mean(r["equal"]["fit_seconds"] for r in speech),
        **{
            f"q{bits}": _mean(r["quantization_loss"][bits]["loss_db"] for r in images)
            for bits in BIT_DEPTHS
        },
        **{
            f"speech_q{bits}": _mean(r["quantization_loss"][bits]["loss_db"] for r in speech)
            for bits in BIT_DEPTHS
        },
        "real_psnr": real(images, "psnr"),
        "real_bpp": real(images, "rate"),
        "real_snr": real(speech, "snr"),
        "real_kbps": real(speech, "rate"),
        "image_low": _mean(r["equal"]["snr_low"] for r in images),
        "image_high": _mean(r["equal"]["snr_high"] for r in images),
        "speech_low": _mean(r["equal"]["snr_low"] for r in speech),
        "speech_high": _mean(r["equal"]["snr_high"] for r in speech),
        "rollbacks": sum(r["equal"]["rollbacks"] for r in images + speech),
        "step_gain": gain(images + speech, "step_gain"),
        "time_gain": gain(images + speech, "time_gain"),
        "psnr_gain": gain(images + speech, "psnr_gain_db"),
    }


def _cell(value, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown(meta: dict, rows: list[dict], families: list[str]) -> str:
    s = meta["settings"]
    budget = (
        f"{s['seconds']:g} s of fitting per fit (load {meta['loadavg_before'][0]:.2f})"
        if s.get("seconds")
        else f"{s['steps']} steps (images), {s['audio_steps']} per segment (speech)"
    )
    lines = [
        f"Model zoo, {meta['date']}: `{meta['command']}` (kancoin {meta['kancoin']}; "
        f"{meta['seconds']:.0f} s on {meta['cpus']} cores, load average "
        f"{meta['loadavg_before'][0]:.2f} before, {meta['loadavg_after'][0]:.2f} after).",
        "",
        f"Images: {s['images']} at 1/{s['downscale']} size; speech: {s['audio_seconds']:g} s "
        f"of LibriSpeech from {s['audio_start']:g} s. Equal footing: {s['params']} parameters "
        f"per image network, {s['audio_params']} per speech segment, {budget}, the "
        f"{s['sampler']} sampler, batches of {IMAGE_BATCH:.0%} (images) / "
        f"{adapters.AUDIO_BATCH_FRACTION:.0%} (speech) for every family. Float PSNR/SNR; "
        "q8/q10: dB lost with every tensor at 8/10 bits; file: `kancoin.encode` at "
        f"{s['bpp']} bpp / {s['kbps']:g} kbps, PSNR/SNR of the decoded file; gain: "
        f"{s['sampler']} over uniform batches to the same quality, in steps (load-free) and "
        "seconds.",
        "",
        "| family | params | image PSNR | uniform | q8 | q10 | file PSNR (bpp) | speech SNR "
        "| q8 | q10 | file SNR (kbps) | gain steps | gain time | fit s (image) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for family in families:
        m = summarise(rows, family)
        lines.append(
            f"| {family} | {m['params'] or '-'} | {_cell(m['image_psnr'])} | "
            f"{_cell(m['image_uniform'])} | {_cell(m['q8'])} | {_cell(m['q10'])} | "
            f"{_cell(m['real_psnr'])} ({_cell(m['real_bpp'], 3)}) | {_cell(m['speech_snr'])} | "
            f"{_cell(m['speech_q8'])} | {_cell(m['speech_q10'])} | "
            f"{_cell(m['real_snr'])} ({_cell(m['real_kbps'], 1)}) | {_cell(m['step_gain'])} | "
            f"{_cell(m['time_gain'])} | {_cell(m['image_fit_s'], 1)} |"
        )
    lines += [
        "",
        f"Frequency response at equal parameters and {'time' if s.get('seconds') else 'steps'}: "
        "SNR (dB) of the band below and above "
        f"{IMAGE_LOW_BAND} cycles/pixel (images, mean) and {LOW_BAND_HZ:g} Hz (speech); "
        "rollbacks: collapses the divergence guard undid over all fits of the family.",
        "",
        "| family | image low | image high | image high - low | speech low | speech high "
        "| speech high - low | rollbacks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in families:
        m = summarise(rows, family)
        lines.append(
            f"| {family} | {_cell(m['image_low'])} | {_cell(m['image_high'])} | "
            f"{_cell(m['image_high'] - m['image_low'])} | {_cell(m['speech_low'])} | "
            f"{_cell(m['speech_high'])} | {_cell(m['speech_high'] - m['speech_low'])} | "
            f"{m['rollbacks']} |"
        )
    lines += ["", "Per signal (spec at the equal parameter count; file model at the rate):", ""]
    lines += ["| family | signal | spec | value | file model | file |", "|---|---|---|---|---|---|"]
    for r in rows:
        real = r["real_file"]
        file_cell = (
            real.get("error", "-")
            if "psnr" not in real
            else f"{real.get('snr', real['psnr']):.2f} dB at {real['rate']:.3f} {real['unit']}"
        )
        lines.append(
            f"| {r['family']} | {r['signal']} | {r['spec']} | {r['equal']['metric']} "
            f"{r['equal']['value']:.2f} | {real.get('model', '-')} | {file_cell} |"
        )
    return "\n".join(lines) + "\n"


def plot(path: Path, rows: list[dict], families: list[str]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    summaries = [summarise(rows, f) for f in families]
    x = np.arange(len(families))
    panels = [
        ("Kodak (half size): PSNR, dB", "image_psnr", "real_psnr", "equal params, steps", "file"),
        ("Speech: SNR, dB", "speech_snr", "real_snr", "equal params, steps", "file"),
    ]
    for i, (title, equal_key, file_key, equal_label, file_label) in enumerate(panels):
        axes = figure.add_subplot(1, 2, i + 1)
        axes.bar(x - 0.2, [s[equal_key] for s in summaries], 0.4, label=equal_label)
        axes.bar(x + 0.2, [s[file_key] for s in summaries], 0.4, label=file_label)
        axes.set_xticks(x, families, rotation=60, ha="right")
        axes.set_title(title)
        axes.grid(axis="y", alpha=0.3)
        axes.legend(fontsize=8)
        values = [v for s in summaries for v in (s[equal_key], s[file_key]) if math.isfinite(v)]
        if values:
            axes.set_ylim(min(values) - 2, max(values) + 1)
    figure.tight_layout()
    figure.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
