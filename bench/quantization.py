"""How much PSNR uniform quantization costs SIREN and KAN, and which wins at equal encode time.

Checks the KAN COIN claim (../shared/RESEARCH.md): with every weight at 9 bits a KAN loses
< 0.1 dB where a SIREN loses > 1 dB. Each model is sized for the same rate by the codec's own
planner, fitted to the same images, then every coded tensor is quantized at one depth
(6..16 bits, `allocation.uniform_bits`) and the float render is measured against the image.
Second table: both models through `kancoin.encode` at the same rate and the same fitting
time budget (rate from the real bytes, PSNR from the decoded 8-bit image).

The default run is bounded (2 images at half size, 60 coordinate passes, i.e. 300 steps of
20 % batches, and 60 s per encode: about 10 minutes on 2 cores); --downscale 1 --passes N
--seconds S for full-size runs. Each family trains at its own batch fraction (presets.py).

    python bench/quantization.py [--images kodim23.png kodim15.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import kancoin
from kancoin import allocation, rate
from kancoin.datasets import kodak_image
from kancoin.fit import FitConfig, fit
from kancoin.models import spec_class_by_name
from kancoin.presets import get_preset
from kancoin.render import render
from kancoin.signals import ImageInfo, image_grid, load_image, psnr_from_mse

MODELS = ("siren", "kan")
BIT_DEPTHS = tuple(range(6, 17))


def load(name: str, downscale: int) -> np.ndarray:
    """A Kodak image as float32 HxWx3, optionally shrunk (Lanczos) to keep runs short."""
    image = load_image(kodak_image(name, download=False))
    if downscale == 1:
        return image
    pixels = Image.fromarray(np.rint(image * 255).astype(np.uint8))
    size = (pixels.width // downscale, pixels.height // downscale)
    return np.asarray(pixels.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255


def fitted_model(image: np.ndarray, model: str, args) -> tuple[torch.nn.Module, dict]:
    """The network the codec would plan for this rate, fitted for --passes over the image."""
    height, width, channels = image.shape
    info = ImageInfo(height=height, width=width, channels=channels)
    preset = get_preset(args.preset)
    base = spec_class_by_name(model)(in_features=2, out_features=channels)
    spec = rate.plan(
        base,
        info,
        args.bpp * info.samples,
        max_layers=preset.max_layers,
        bits_per_param=spec_class_by_name(model).bits_per_param,
    )
    torch.manual_seed(args.seed)
    network = spec.build()
    coords = image_grid(height, width)
    targets = torch.from_numpy(image.reshape(-1, channels))
    fraction = spec.batch_fraction or preset.batch_fraction
    config = FitConfig(
        steps=max(1, round(args.passes / fraction)),
        lr=preset.lr * spec.lr_scale,
        batch_fraction=fraction,
        seed=args.seed,
    )
    result = fit(network, coords, targets, config)
    row = {
        "model": spec.describe(),
        "params": spec.num_params(),
        "psnr_float": result.psnr,
        "fit_seconds": result.seconds,
        "header_bits": rate.header_bits(spec, info),
    }
    return network, row


def quantization_losses(network, image: np.ndarray, header_bits: int) -> dict[int, dict]:
    """Per bit depth: PSNR of the float render with every tensor at that depth, and bpp."""
    height, width, channels = image.shape
    coords = image_grid(height, width)
    targets = torch.from_numpy(image.reshape(-1, channels))
    original = {k: v.clone() for k, v in network.state_dict().items()}
    out = {}
    for bits in BIT_DEPTHS:
        chosen = allocation.uniform_bits(network, bits)
        allocation.load_quantized(network, chosen)
        prediction = render(network, coords).clamp_(0, 1)
        out[bits] = {
            "psnr": psnr_from_mse(float((prediction - targets).pow(2).mean())),
            "bpp": (chosen.payload_bits + header_bits) / (height * width),
        }
        network.load_state_dict(original)
    return out


def equal_time(image: np.ndarray, model: str, args) -> dict:
    started = time.perf_counter()
    result = kancoin.encode(
        image,
        bpp=args.bpp,
        model=model,
        time_budget=args.seconds,
        preset=args.preset,
        seed=args.seed,
    )
    return {
        "model": result.header.spec.describe(),
        "params": result.header.spec.num_params(),
        "bpp": result.bpp,
        "psnr": result.psnr,
        "psnr_float": result.psnr_float,
        "steps": result.steps,
        "fit_seconds": result.fit_seconds,
        "seconds": time.perf_counter() - started,
    }


def each_model(rows: dict):
    """(image name, row of one model) over a {image: {model: row}} table."""
    for name, row in rows.items():
        for model in MODELS:
            yield name, row[model]


def print_quantization_table(rows: dict) -> None:
    names = list(rows)
    print("\nPSNR loss (dB, float model minus quantized) with every tensor at N bits; mean over")
    print(f"{', '.join(names)}; bpp = entropy-coded size at that depth, header included\n")
    print("| bits | SIREN loss | SIREN bpp | KAN loss | KAN bpp |")
    print("|---|---|---|---|---|")
    for bits in BIT_DEPTHS:
        cells = []
        for model in MODELS:
            losses = [
                r[model]["psnr_float"] - r[model]["depths"][bits]["psnr"] for r in rows.values()
            ]
            bpps = [r[model]["depths"][bits]["bpp"] for r in rows.values()]
            cells += [f"{np.mean(losses):.2f}", f"{np.mean(bpps):.3f}"]
        print(f"| {bits} | " + " | ".join(cells) + " |")
    print("\nper image (float PSNR before quantization):")
    for name, r in each_model(rows):
        print(
            f"  {name} {r['model']}: {r['params']} params, {r['psnr_float']:.2f} dB, "
            f"{r['fit_seconds']:.0f} s"
        )


def print_equal_time_table(rows: dict, args) -> None:
    print(f"\n{args.bpp} bpp, {args.seconds:g} s of fitting each (kancoin.encode, real bytes)\n")
    print("| image | model | params | steps | bpp | PSNR | float PSNR | encode s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in each_model(rows):
        print(
            f"| {name} | {r['model']} | {r['params']} | {r['steps']} | {r['bpp']:.3f} | "
            f"{r['psnr']:.2f} | {r['psnr_float']:.2f} | {r['seconds']:.0f} |"
        )
    for model in MODELS:
        mean = np.mean([row[model]["psnr"] for row in rows.values()])
        print(f"mean {model}: {mean:.2f} dB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="+", default=["kodim23.png", "kodim15.png"])
    parser.add_argument("--downscale", type=int, default=2, help="1 = full 768x512")
    parser.add_argument("--bpp", type=float, default=0.3)
    parser.add_argument(
        "--passes", type=float, default=60.0, help="first table: steps x batch fraction"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="fit budget, second table")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--skip-equal-time", action="store_true")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        images = {name: load(name, args.downscale) for name in args.images}
    except kancoin.KancoinError as exc:
        print(f"quantization: {exc}", file=sys.stderr)
        return 3
    shape = next(iter(images.values())).shape
    print(
        f"images {', '.join(images)} at {shape[1]}x{shape[0]}, {args.bpp} bpp, threads "
        f"{torch.get_num_threads()}",
        flush=True,
    )

    robustness = {}
    for name, image in images.items():
        robustness[name] = {}
        for model in MODELS:
            network, row = fitted_model(image, model, args)
            row["depths"] = quantization_losses(network, image, row["header_bits"])
            robustness[name][model] = row
            print(f"  fitted {name} {row['model']}: {row['psnr_float']:.2f} dB", flush=True)
    print_quantization_table(robustness)

    timed = {}
    if not args.skip_equal_time:
        for name, image in images.items():
            timed[name] = {model: equal_time(image, model, args) for model in MODELS}
            print(f"  encoded {name}", flush=True)
        print_equal_time_table(timed, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "quantization": robustness,
                    "equal_time": timed,
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
