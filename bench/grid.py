"""Latent-grid model measurements behind docs/GRID.md (Kodak images at a target bpp).

Each variant is the codec as users run it (real file, 8-bit decode) with some GridSpec or
GridFitConfig fields changed; prints one row per image and variant: PSNR of the decoded
file, its bpp, the float PSNR before quantization, steps, fitting seconds and steps/s.
Quality at a fixed step count does not depend on machine load; times do, so the load
average is printed with them. Use --threads 1 and nice on a shared machine.

  python bench/grid.py --images kodim15 --steps 300 --variants base,factorized,noise
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import kancoin
from kancoin import adapters, decoder, grid_codec
from kancoin.config import EncodeConfig

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"

# name -> (GridSpec changes, GridFitConfig changes)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "base": ({}, {}),
    # the fifth session's pipeline checks (model id 22): warm start and frozen finest level off
    "nowarm": ({}, {"warm_steps": 0}),
    "nofreeze": ({}, {"freeze_finest": False}),
    "nowarm-nofreeze": ({}, {"warm_steps": 0, "freeze_finest": False}),
    # a full image's networks on a crop (its budget would size them 8 wide), lambda's start
    "w16": ({"hidden": 16, "context_hidden": 16}, {}),
    "w16-lam002": ({"hidden": 16, "context_hidden": 16}, {"lam": 0.002}),
    "w16-lam003": ({"hidden": 16, "context_hidden": 16}, {"lam": 0.003}),
    "lam002": ({}, {"lam": 0.002}),
    "lam002-wide32": ({"hidden": 32}, {"lam": 0.002}),
    "lam002-wide24": ({"hidden": 24}, {"lam": 0.002}),
    "lam002-nofreeze": ({}, {"lam": 0.002, "freeze_finest": False}),
    "lam002-nofreeze-wide32": ({"hidden": 32}, {"lam": 0.002, "freeze_finest": False}),
    "lam002-nofreeze-wide24": ({"hidden": 24}, {"lam": 0.002, "freeze_finest": False}),
    "lam001-nofreeze": ({}, {"lam": 0.001, "freeze_finest": False}),
    "wide24": ({"hidden": 24}, {}),
    "wide32": ({"hidden": 32}, {}),
    # SOAP on the networks (Cool-chic 5's settings), latents on Adam; and at the SOAP
    # paper's learning rate
    "soap": ({}, {"optimizer": "soap"}),
    "soap-lr003": ({}, {"optimizer": "soap", "lr_networks": 0.003}),
    # KAN synthesis (activation 3) at about the crop base's synthesis size (7-8-8-3 ReLU:
    # 163 weights): two KAN layers of 3 (168), or one KAN layer after a linear 7 -> 5 (160)
    "kan-h3": ({"activation": 3, "hidden": 3}, {}),
    "kan1-h5": ({"activation": 3, "hidden": 5, "hidden_layers": 1}, {}),
    # the same for a full image, whose budget sizes the ReLU synthesis at 7-16-16-3 (451
    # weights): linear 7 -> 14, one KAN layer 14 -> 3 (448)
    "kan1-h14": ({"activation": 3, "hidden": 14, "hidden_layers": 1}, {}),
    "ctx32": ({"context_hidden": 32}, {}),
    "net02": ({}, {"lr_networks": 0.02}),
    "net005": ({}, {"lr_networks": 0.005}),
    # freezing the finest level saves ~25 % CPU per step: the same CPU buys 4/3 the steps
    # (with --steps 300; the zero level costs no bits since the format's flag)
    "floor": ({}, {"fill": "floor"}),
    "frozen-400-floor": (
        {},
        {"freeze_finest": True, "steps": 400, "warm_steps": 200, "fill": "floor"},
    ),
    "frozen-400": ({}, {"freeze_finest": True, "steps": 400, "warm_steps": 200}),
    "no-tune": ({}, {"tune_steps": 0}),
    "tune300": ({}, {"tune_steps": 300}),
    "factorized": ({"context_hidden": 0}, {}),
    "context8": ({"context_hidden": 8}, {}),
    "noise": ({}, {"quantizer": "noise"}),
    "ste": ({}, {"quantizer": "ste"}),
    "no-ste-phase": ({}, {"ste_share": 0.0}),
    "sampled25": ({}, {"batch_fraction": 0.25}),
    "gelu": ({"activation": 1}, {}),
    "sine": ({"activation": 2}, {}),
    "bicubic": ({"upsampling": 1}, {}),
    "levels5": ({"levels": 5}, {}),
    "levels8": ({"levels": 8}, {}),
    "lr-low": ({}, {"lr_latents": 0.01, "lr_networks": 0.002}),
    "lr-high": ({}, {"lr_latents": 0.05, "lr_networks": 0.01}),
    "lat015": ({}, {"lr_latents": 0.15}),
    "lat03": ({}, {"lr_latents": 0.3}),
    "gain2": ({}, {"latent_gain": 2.0}),
    "gain141": ({}, {"latent_gain": 1.41}),
    "lat015-gain141": ({}, {"lr_latents": 0.15, "latent_gain": 1.41}),
    "lat01-gain141": ({}, {"lr_latents": 0.1, "latent_gain": 1.41}),
    "lat02-gain141": ({}, {"lr_latents": 0.2, "latent_gain": 1.41}),
    "lat015-gain17": ({}, {"lr_latents": 0.15, "latent_gain": 1.7}),
    "lat015-gain12": ({}, {"lr_latents": 0.15, "latent_gain": 1.2}),
    "lat01-gain2": ({}, {"lr_latents": 0.1, "latent_gain": 2.0}),
    "warm200": ({}, {"warm_steps": 200}),
    "warm400": ({}, {"warm_steps": 400}),
    "warm800": ({}, {"warm_steps": 800}),
    "warm400-frozen": ({}, {"warm_steps": 400, "freeze_finest": True}),
    "frozen": ({}, {"freeze_finest": True}),
    "w4-ctl01": ({}, {"warm_steps": 400, "control_from": 0.1}),
    "w4d3-frozen": ({}, {"warm_steps": 400, "warm_depth": 3, "freeze_finest": True}),
    "w4d3-ctl01": ({}, {"warm_steps": 400, "warm_depth": 3, "control_from": 0.1}),
    "w4d3-ctl01-frozen": (
        {},
        {"warm_steps": 400, "warm_depth": 3, "control_from": 0.1, "freeze_finest": True},
    ),
    "warm400-deep3": ({}, {"warm_steps": 400, "warm_depth": 3}),
    "warm600-deep3": ({}, {"warm_steps": 600, "warm_depth": 3}),
    "warm400-no-ste": ({}, {"warm_steps": 400, "ste_share": 0.0}),
    "old-lr": ({}, {"lr_latents": 0.05, "latent_gain": 1.0}),
    "gauss": ({}, {"gaussian_noise": (0.22, 0.15)}),
    "gauss-t035": ({}, {"gaussian_noise": (0.22, 0.15), "temperature": (0.35, 0.08)}),
    "net003": ({}, {"lr_networks": 0.003}),
    "net003-lat015": ({}, {"lr_latents": 0.15, "lr_networks": 0.003}),
}


def run(
    path: Path, bpp: float, steps: int, variant: str, seed: int, crop=None, model: str = "grid"
) -> dict:
    spec_changes, fit_changes = VARIANTS[variant]
    config = EncodeConfig().with_options(bpp=bpp, model=model, steps=steps, seed=seed)
    kind = adapters.ImageKind.load(path)
    if crop is not None:  # the centre crop: ablations at a quarter of the cost
        image = kind.image
        height, width = crop
        top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        image = np.ascontiguousarray(image[top : top + height, left : left + width])
        kind = adapters.ImageKind.load(image)
    budget = kind.budget_bits(config)
    torch.manual_seed(seed)
    started = time.perf_counter()
    encoded = grid_codec.encode(
        kind,
        config,
        budget,
        torch.device("cpu"),
        spec_changes=spec_changes,
        fit_changes=fit_changes,
    )
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    decoded = kancoin.decode(encoded.data, device="cpu")
    decode_seconds = time.perf_counter() - started
    header, payload = decoder.read_file(encoded.data)
    split = grid_codec.payload_report(header, payload)
    return {
        "image": path.stem + (f" {crop[0]}x{crop[1]}" if crop else ""),
        "variant": variant,
        "bpp": round(8 * len(encoded.data) / kind.info.samples, 4),
        "psnr": round(kind.measure(decoded)["psnr"], 2),
        "psnr_float": round(encoded.psnr_float, 2),
        "steps": encoded.fit.steps,
        "fit_s": round(encoded.fit.seconds, 1),
        "fit_cpu_s": round(encoded.fit.cpu_seconds, 1),
        "encode_s": round(seconds, 1),
        "decode_s": round(decode_seconds, 2),
        "steps_per_s": round(encoded.fit.steps / encoded.fit.seconds, 2),
        "network_share": round(split["network_bits"] / (8 * len(encoded.data)), 3),
        "lambda": round(encoded.fit.lam, 6),
        "latent_step_index": encoded.latent_step_index,
        "psnr_quantized": round(encoded.psnr_quantized, 2),
        "psnr_written": round(encoded.psnr_written, 2),
        "psnr_tuned": round(encoded.psnr_tuned, 2),
        "step1_share": round(encoded.step1_share, 3),
        "fit_bpp": round(encoded.fit.bpp, 4),
        "level_bits": [round(b) for b in split["latent_bits_per_level"]],
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="kodim07,kodim15,kodim23")
    parser.add_argument("--bpp", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--variants", default="base")
    parser.add_argument("--model", default="grid", help="grid (id 22) or grid-checkerboard (4)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="append rows to this JSON-lines file")
    parser.add_argument("--crop", help="HxW centre crop of each image, e.g. 256x384")
    args = parser.parse_args()
    if not KODAK.is_dir():
        raise SystemExit(f"no Kodak images in {KODAK}")
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown} (have: {', '.join(VARIANTS)})")
    rows = []
    print(
        "| image | variant | bpp | PSNR | float | steps | fit s | cpu s | steps/s | nets | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.images.split(","):
        for variant in variants:
            crop = tuple(map(int, args.crop.split("x"))) if args.crop else None
            row = run(
                KODAK / f"{name}.png", args.bpp, args.steps, variant, args.seed, crop, args.model
            )
            rows.append(row)
            print(
                f"| {row['image']} | {variant} | {row['bpp']} | {row['psnr']} | "
                f"{row['psnr_float']} | {row['steps']} | {row['fit_s']} | {row['fit_cpu_s']} | "
                f"{row['steps_per_s']} | {row['network_share']} | {row['load']:.1f} |",
                flush=True,
            )
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    for variant in variants:
        psnrs = [r["psnr"] for r in rows if r["variant"] == variant]
        print(f"mean {variant}: {np.mean(psnrs):.2f} dB over {len(psnrs)} images", file=sys.stderr)


if __name__ == "__main__":
    main()
