"""Diagnostics behind docs/GRID.md's "Fourth session" (the convolutional stage): float PSNR
of the grid's synthesis with and without convolutions, no file written.

  --mode tune:   fit the base model (crop, 400 steps), round its latents, then tune the
                 synthesis alone 300 steps with 0, 1 or 2 residual 3x3 convolutions on its
                 output (start: identity): what the stage adds at fixed latents.
  --mode hidden: fit with one residual 3x3 convolution (ReLU) on the first hidden layer's
                 width instead, at the base plan's rate target (its weights not charged):
                 the float model on rounded latents and their rate.

  python bench/grid_conv.py --image kodim15 --mode tune
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from kancoin import adapters, grid_codec
from kancoin.config import EncodeConfig
from kancoin.fit.grid_trainer import fit_grid, tune_synthesis

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"


def crop(name: str, height: int = 256, width: int = 384) -> np.ndarray:
    image = np.asarray(Image.open(KODAK / f"{name}.png").convert("RGB"), dtype=np.float32) / 255
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def add_hidden_conv(model, where: int) -> None:
    """A residual 3x3 convolution (zero start, ReLU) after hidden layer `where`."""
    height, width = model.spec.height, model.spec.width
    channels = model.synthesis[where].out_features
    model.hidden_conv = nn.Conv2d(channels, channels, 3)
    nn.init.zeros_(model.hidden_conv.weight)
    nn.init.zeros_(model.hidden_conv.bias)
    networks = model.network_parameters
    model.network_parameters = lambda: networks() + list(model.hidden_conv.parameters())

    def synthesize_full(features: torch.Tensor) -> torch.Tensor:
        h = features
        last = len(model.synthesis) - 1
        for i, layer in enumerate(model.synthesis):
            h = layer(h)
            if i == last:
                break
            h = torch.relu(h)
            if i == where:
                x = h.t().reshape(1, -1, height, width)
                x = torch.relu(x + model.hidden_conv(F.pad(x, (1, 1, 1, 1), mode="replicate")))
                h = x.reshape(channels, -1).t()
        return h

    model.synthesize_full = synthesize_full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="kodim15")
    parser.add_argument("--mode", choices=("tune", "hidden"), default="tune")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    kind = adapters.ImageKind.load(crop(args.image))
    config = EncodeConfig().with_options(bpp=0.3, model="grid", steps=args.steps, seed=0)
    plan = grid_codec.plan(kind, config)
    image = torch.from_numpy(kind.image)
    model = grid_codec.build_seeded(plan.spec, 0, torch.device("cpu"))
    if args.mode == "hidden":
        for where in (None, 0):
            model = grid_codec.build_seeded(plan.spec, 0, torch.device("cpu"))
            if where is not None:
                add_hidden_conv(model, where)
            fit = fit_grid(model, image, plan.fit)
            with torch.no_grad():
                levels = [torch.round(y.detach()) for y in model.latents]
                out = model.synthesize_full(model.upsample_full(levels)).clamp(0, 1)
                mse = float((out - image.reshape(out.shape)).pow(2).mean())
                planes = [level[0, 0] for level in levels]
                bits = float(torch.stack(model.context.bits(planes, start=1)).sum())
            print(
                f"{args.image} hidden conv {where}: float {10 * np.log10(1 / mse):.2f} dB, "
                f"latents {bits / image.shape[0] / image.shape[1]:.4f} bpp, "
                f"fit {fit.cpu_seconds:.1f} CPU s",
                flush=True,
            )
        return
    fit_grid(model, image, plan.fit)
    with torch.no_grad():
        for y in model.latents:
            y.copy_(torch.round(y))
    for conv in (0, 1, 2):
        tuned = plan.spec.replace(conv_layers=conv).build()
        tuned.load_state_dict(model.state_dict(), strict=False)
        before, after = tune_synthesis(copy.deepcopy(tuned), image, 300)
        print(f"{args.image} conv {conv}: {before:.2f} -> {after:.2f} dB", flush=True)


if __name__ == "__main__":
    main()
