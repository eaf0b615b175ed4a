"""From model id 4's recipe to Cool-chic's, one change at a time, at a fixed lambda.

The fifth grid session's diagnosis (docs/GRID.md): Cool-chic's own code, cut down to our
decoder's size (one 16-16 MLP synthesis, an 8-neighbour ARM, no hyperlatents), beat
JPEG2000 on a crop where our grid lost to it. This trains our grid on the same crop with
each of Cool-chic's choices added in turn, no rate control, no warm start, every level
trained: the float networks on the rounded latents (PSNR) and the context model's rate of
those latents (latents only, no networks), beside JPEG2000 (with its colour transform) at
that rate. Variants are cumulative, in the order of VARIANTS; "arm8" is a float-only
Cool-chic ARM (shared by the levels, its initialisation and linear branch), which model
id 22's integer context model then replaces ("id22").

  PYTHONPATH=. python bench/grid_recipe.py --image kodim15 --crop 256x384 --steps 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from kancoin.fit.grid_trainer import GridFitConfig, fit_grid
from kancoin.latents import RASTER, RASTER_OFFSETS
from kancoin.models.grid import GridSpec, RasterGridSpec
from kancoin.rd.baselines import Jpeg2000Codec
from kancoin.signals import psnr, psnr_from_mse

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"
COOLCHIC_SCHEDULE = {
    "temperature": (0.35, 0.08),
    "gaussian_noise": (0.22, 0.15),
    "ste_share": 0.1,
    "latent_gain": 1.0,
    "lr_latents": 0.16,
}
# name -> (fit changes, float ARM, cascade upsampling); each adds to the one before
VARIANTS = {
    "old": ({}, False, False),
    "schedule": (COOLCHIC_SCHEDULE, False, False),
    "arm8": (COOLCHIC_SCHEDULE, True, False),
    "no-ste": ({**COOLCHIC_SCHEDULE, "ste_share": 0.0}, True, False),
    "cascade": ({**COOLCHIC_SCHEDULE, "ste_share": 0.0}, True, True),
}


class CoolchicArm(nn.Module):
    """Cool-chic's ARM in float: 8 causal neighbours -> hidden -> (mean, log scale), plus a
    linear branch, shared by every level; its initialisation and scale shift (exp(x - 4))."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        inputs = len(RASTER_OFFSETS)
        self.l1, self.l2, self.linear = (
            nn.Linear(inputs, hidden),
            nn.Linear(hidden, 2),
            nn.Linear(inputs, 2),
        )
        with torch.no_grad():
            for layer in (self.l1, self.l2):
                layer.weight.copy_(torch.randn_like(layer.weight) / layer.weight.shape[0] ** 2)
                layer.bias.zero_()
            self.linear.weight.copy_(torch.randn_like(self.linear.weight) / 4)
            self.linear.bias.zero_()

    def bits(self, levels: list[torch.Tensor], start: int = 0) -> list[torch.Tensor]:
        out = []
        for y in levels[start:]:
            x = RASTER.feature_map(y, None).reshape(-1, len(RASTER_OFFSETS))
            o = self.l2(torch.relu(self.l1(x))) + self.linear(x)
            scale = torch.exp(torch.clamp(o[:, 1] - 4, -5, 5))
            z = y.reshape(-1) - o[:, 0]

            def cdf(t, scale=scale):
                return 0.5 - 0.5 * t.sign() * torch.expm1(-t.abs() / scale)

            p = torch.clamp_min(cdf(z + 0.5) - cdf(z - 0.5), 2**-16)
            out.append(-torch.log2(p).sum())
        return out


def run(image: np.ndarray, variant: str, steps: int, lam: float) -> dict:
    height, width, _ = image.shape
    target = torch.from_numpy(image / 255.0).float()
    if variant == "id22":
        spec = RasterGridSpec(in_features=2, out_features=3, height=height, width=width)
        changes, arm, up = dict(spec.fit_defaults), False, False
    else:
        changes, arm, up = VARIANTS[variant]
        spec = GridSpec(
            in_features=2, out_features=3, height=height, width=width, upsampling=2 if up else 1
        )
    torch.manual_seed(0)
    model = spec.build()
    if arm:
        model.context = CoolchicArm()
    started = time.process_time()
    fit_grid(model, target, GridFitConfig(steps=steps, lam=lam, **changes))
    cpu = time.process_time() - started
    with torch.no_grad():
        rounded = [torch.round(y) for y in model.latents]
        pixels = model.synthesize(model.upsample_full(rounded)).clamp(0, 1)
        mse = float((pixels - target.reshape(-1, 3)).pow(2).mean())
        bits = sum(float(b) for b in model.context.bits([y[0, 0] for y in rounded]))
    bpp = bits / (height * width)
    with tempfile.TemporaryDirectory() as work:
        reference = Jpeg2000Codec().run(image, bpp, Path(work) / "ref.j2k").reconstruction
    jpeg2000 = psnr(original=image / 255, reconstruction=reference / 255)
    value = psnr_from_mse(mse)
    return {
        "variant": variant,
        "psnr": round(value, 2),
        "latent_bpp": round(bpp, 4),
        "jpeg2000": round(jpeg2000, 2),
        "gain": round(value - jpeg2000, 2),
        "cpu_s": round(cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="kodim15")
    parser.add_argument("--crop", help="HxW centre crop, e.g. 256x384")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lam", type=float, default=0.002)
    parser.add_argument("--variants", default=",".join([*VARIANTS, "id22"]))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = np.asarray(Image.open(KODAK / f"{args.image}.png").convert("RGB"))
    if args.crop:
        h, w = map(int, args.crop.split("x"))
        top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        image = np.ascontiguousarray(image[top : top + h, left : left + w])
    print("| variant | PSNR | latent bpp | JPEG2000 there | gain | CPU s |")
    print("|---|---|---|---|---|---|")
    for variant in args.variants.split(","):
        row = run(image, variant, args.steps, args.lam)
        print(
            f"| {row['variant']} | {row['psnr']:.2f} | {row['latent_bpp']:.4f} | "
            f"{row['jpeg2000']:.2f} | {row['gain']:+.2f} | {row['cpu_s']} |",
            flush=True,
        )
        print(json.dumps(row), file=sys.stderr)


if __name__ == "__main__":
    main()
