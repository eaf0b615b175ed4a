"""1-D latent grid (`--model grid1d`) measurements behind docs/AUDIO.md.

Each variant is the codec as users run it (real file, 16-bit decode) with some Grid1DSpec
or GridFitConfig fields changed, on a window of a shared clip; prints one JSON row per
clip and variant: PSNR / SNR of the decoded file, kbps, the float PSNR on rounded latents,
the latent step the rate loop chose, fitting CPU seconds and the load average.

  nice python bench/audio_grid.py --seconds 2 --kbps 32 --steps 300 --variants base,sine
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from kancoin import adapters, bitstream, decoder, grid1d_codec
from kancoin.audio import load_audio
from kancoin.config import EncodeConfig

AUDIO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "audio"
CLIPS = {
    "librispeech": "librispeech_1995-1837-0001_16k.wav",
    "jfk": "jfk_inaugural_16k.wav",
    "brahms": "brahms_hungarian_dance_no5_excerpt_44k_mono.wav",
}

# name -> (Grid1DSpec changes, GridFitConfig changes over the codec's own). The codec's
# defaults were the image grid's when the first rows of docs/AUDIO.md's table ran: those
# rows name the fit fields they changed, and "base" then meant lr_latents 0.05,
# lambda_range 4, ste_share 0.15 (since: grid1d_codec.FIT_CHANGES); until the rate-use
# study, soft rounding without a warm start ("softround" now).
VARIANTS: dict[str, tuple[dict, dict]] = {
    "base": ({}, {}),
    "factorized": ({"context_hidden": 0}, {}),
    "sine": ({"activation": 2}, {}),
    "bilinear": ({"upsampling": 0}, {}),
    "levels8": ({"levels": 8}, {}),
    "no-ste-phase": ({}, {"ste_share": 0.0}),
    "lr-low": ({}, {"lr_latents": 0.02, "lr_networks": 0.005}),
    "lr-high": ({}, {"lr_latents": 0.1, "lr_networks": 0.01}),
    "linear": ({"hidden_layers": 0}, {}),
    "lr-lat0.2": ({}, {"lr_latents": 0.2}),
    "lr-lat0.5": ({}, {"lr_latents": 0.5}),
    "lr-lat1": ({}, {"lr_latents": 1.0}),
    "lr-lat0.5-range8": ({}, {"lr_latents": 0.5, "lambda_range": 8.0}),
    "lr0.5": ({}, {"lr_latents": 0.5}),
    "lr0.33": ({}, {"lr_latents": 0.33}),
    "lr0.24": ({}, {"lr_latents": 0.24}),
    "lr0.15": ({}, {"lr_latents": 0.15}),
    "image-recipe": ({}, {"lr_latents": 0.05, "lambda_range": 4.0, "ste_share": 0.15}),
    "r8-noste-noise": (
        {},
        {"lr_latents": 0.5, "lambda_range": 8.0, "ste_share": 0.0, "quantizer": "noise"},
    ),
    "r8-noste-warm": (
        {},
        {"lr_latents": 0.5, "lambda_range": 8.0, "ste_share": 0.0, "temperature": (0.5, 0.3)},
    ),
    "r8-noste": ({}, {"lr_latents": 0.5, "lambda_range": 8.0, "ste_share": 0.0}),
    "r8-sine": ({"activation": 2}, {"lr_latents": 0.5, "lambda_range": 8.0}),
    "r8-wide": ({"hidden": 24}, {"lr_latents": 0.5, "lambda_range": 8.0}),
    "r8-lr0.3": ({}, {"lr_latents": 0.3, "lambda_range": 8.0}),
    "lr-lat0.3": ({}, {"lr_latents": 0.3}),
    "lr-lat0.3-fact": ({"context_hidden": 0}, {"lr_latents": 0.3}),
    "lr-lat0.3-wide": ({"hidden": 24}, {"lr_latents": 0.3}),
    "lr-lat0.3-l10": ({"levels": 10}, {"lr_latents": 0.3}),
    "lr-lat0.3-net": ({}, {"lr_latents": 0.3, "lr_networks": 0.003}),
    # the rate-use study (docs/AUDIO.md, "Why the grid left its budget unused")
    "lr1-range2": ({}, {"lr_latents": 1.0, "lambda_range": 2.0}),
    "lr0.7": ({}, {"lr_latents": 0.7}),
    "noise": ({}, {"quantizer": "noise"}),
    "t-end0.2": ({}, {"temperature": (0.3, 0.2)}),
    "warm250": ({}, {"warm_steps": 250}),
    "warm500": ({}, {"warm_steps": 500}),
    "warm500-noise": ({}, {"warm_steps": 500, "quantizer": "noise"}),
    "warm500-t0.2": ({}, {"warm_steps": 500, "temperature": (0.3, 0.2)}),
    "warm300-noise": ({}, {"warm_steps": 300, "quantizer": "noise"}),
    "warm500-noise-ste": ({}, {"warm_steps": 500, "quantizer": "noise", "ste_share": 0.15}),
    # the recipe before the rate-use study: soft rounding, no warm start
    "softround": ({}, {"quantizer": "softround", "warm_steps": 0}),
}


def run(clip: str, seconds: float, kbps: float, steps: int, variant: str, detail=False) -> dict:
    spec_changes, fit_changes = VARIANTS[variant]
    samples, rate = load_audio(AUDIO / CLIPS[clip])
    if seconds:
        start = int(0.3 * len(samples))
        samples = samples[start : start + round(seconds * rate)]
    config = EncodeConfig().with_options(kbps=kbps, model="grid1d", steps=steps)
    kind = adapters.for_source(samples, config, sample_rate=rate)
    cpu = time.process_time()
    encoded = grid1d_codec.encode(
        kind,
        config,
        kind.budget_bits(config),
        torch.device("cpu"),
        spec_changes=spec_changes,
        fit_changes=fit_changes,
    )
    metrics = kind.measure(decoder.decode(encoded.data))
    header = decoder.read_file(encoded.data)[0]
    extra = {}
    if detail:  # where the bits went: the file's latents per level, the fit's rate and lambda
        model = grid1d_codec.load_models(*bitstream.read(encoded.data), torch.device("cpu"))[0]
        report = grid1d_codec.payload_report(*bitstream.read(encoded.data))
        extra["levels"] = [
            {
                "latents": y.numel(),
                "zero_share": round(float((y == 0).float().mean()), 3),
                "max_abs": int(y.abs().max()),
                "bits": bits,
            }
            for y, bits in zip(model.latents, report["latent_bits_per_level"], strict=True)
        ]
        extra["history"] = [  # (step, psnr, lambda, rounded latents' bits per sample)
            (h[0], h[2], float(f"{h[4]:.3g}"), h[5]) for h in encoded.fit.history[::4]
        ]
    return extra | {
        "clip": clip,
        "variant": variant,
        "seconds": seconds or round(len(samples) / rate, 3),
        "steps": steps,
        "kbps": round(8 * len(encoded.data) / (len(samples) / rate) / 1000, 3),
        "psnr": round(metrics["psnr"], 2),
        "snr": round(metrics["snr"], 2),
        "float_psnr": round(encoded.psnr_float, 2),
        "latent_step_index": encoded.latent_step_index,
        "lambda": encoded.fit.lam,
        "model": header.spec.describe(),
        "cpu_s": round(time.process_time() - cpu, 1),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", default="librispeech")
    parser.add_argument("--seconds", type=float, default=2.0, help="0: the whole clip")
    parser.add_argument("--kbps", type=float, default=32.0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--variants", default="base")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--detail", action="store_true", help="per-level latents, fit history")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for clip in args.clips.split(","):
        for variant in args.variants.split(","):
            row = run(clip, args.seconds, args.kbps, args.steps, variant, args.detail)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
