"""Seconds per full-image training step of `--model grid`: the chunked loss terms
(kancoin.fit.grid_losses) against the same terms through autograd, in one run.

Every path trains the same model on the same image from the same start (model id 22 at its
defaults on a Kodak image), in turn, `--rounds` times `--steps` steps each; prints each
path's median seconds per step and its ratio to the first, the proxy PSNR and rate of its
last round (the paths compute the same terms, up to float rounding; after a few dozen
steps of Adam from zero latents their trajectories differ anyway) and the load average.
A speed claim: run it with nothing else on the machine.

  python bench/grid_step.py --image kodim15 --steps 40 --rounds 5 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kancoin.fit import grid_losses, grid_trainer
from kancoin.fit.grid_trainer import GridFitConfig, fit_grid
from kancoin.models.grid import RasterGridSpec

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"


def autograd_mse(model, features, targets):
    return (model.synthesize(features) - targets).pow(2).mean()


def autograd_bits(context, levels, start=0):
    return torch.stack(context.bits(levels, start=start)).sum()


# name -> (the two loss terms, MKL's threads dynamic)
PATHS = {
    "chunked": (grid_losses.synthesis_mse, grid_losses.context_bits),
    "autograd": (autograd_mse, autograd_bits),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", default="kodim15")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pixels = np.asarray(Image.open(KODAK / f"{args.image}.png").convert("RGB"), np.float32)
    image = torch.from_numpy(pixels / 255)
    height, width, _ = image.shape
    spec = RasterGridSpec(in_features=2, out_features=3, height=height, width=width)
    config = GridFitConfig(steps=args.steps, lam=0.001, **RasterGridSpec.fit_defaults)
    times: dict[str, list[float]] = {name: [] for name in PATHS}
    final = {}
    for _ in range(args.rounds):
        for name, (mse, bits) in PATHS.items():
            grid_trainer.synthesis_mse, grid_trainer.context_bits = mse, bits
            model = spec.build()
            started = time.perf_counter()
            result = fit_grid(model, image, config)
            times[name].append((time.perf_counter() - started) / args.steps)
            final[name] = (result.psnr, result.bpp)
    grid_trainer.synthesis_mse, grid_trainer.context_bits = PATHS["chunked"]
    print(
        f"{args.image} {height}x{width}, {args.steps} steps x {args.rounds} rounds, "
        f"{args.threads} threads, load {os.getloadavg()[0]:.2f}"
    )
    first = statistics.median(next(iter(times.values())))
    for name, values in times.items():
        psnr, bpp = final[name]
        median = statistics.median(values)
        print(
            f"{name:22s} {median:.4f} s/step (min {min(values):.4f}, {median / first:.2f}x), "
            f"last proxy PSNR {psnr:.2f} dB at {bpp:.4f} bpp"
        )


if __name__ == "__main__":
    main()
