"""Cool-chic's own encoder on a crop, one decoder piece taken out at a time.

Issue 14's fifth session asked which of Cool-chic's pieces carries its lead over our grid.
This copies a Cool-chic checkout the user provides (nothing is downloaded) to a temporary
folder, applies bench/coolchic_short.patch (a short schedule: `--n_itr` below 2000 with one
warm-up candidate, and two switches: CC_FREEZE_UPS keeps the upsampling filters at their
start, CC_ADAM runs the networks on Adam instead of SOAP; the network RDOQ is skipped),
and encodes the centre crop with each variant. Printed per variant: PSNR of the float
networks on the rounded latents and the latents' estimated rate after the last iteration
(Cool-chic's log), then the quantized networks' rate, and JPEG2000 (with its colour
transform) at the latents' rate. Cool-chic needs einops, ConfigArgParse, fvcore and
constriction importable (`--deps DIR`), and torchvision's `to_tensor` (a stub will do).

  python bench/coolchic_ablation.py --coolchic CC --deps DEPS --image kodim15 --crop 256x384
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from kancoin.rd.baselines import Jpeg2000Codec
from kancoin.signals import psnr

HERE = Path(__file__).resolve().parent
KODAK = HERE.parent.parent / "shared" / "data" / "kodak"
# a decoder the size of ours: 16-16 MLP synthesis, ARM of 8 neighbours and one hidden
# layer, no hyperlatents, no inter-level ARM features, 4-tap upsampling
OURS = [
    "--hyperlatent_resolution_residue", "no",
    "--ifce_resolution_residue", "no",
    "--layers_synthesis_residue", "16-1-linear-relu,16-1-linear-relu,X-1-linear-none/stabiliser",
    "--ups_k_size_residue", "4",
    "--ups_preconcat_k_size_residue", "1",
    "--arm_residue", "8,1/stabiliser",
]  # fmt: skip
NO_STABILISER = [a.replace("/stabiliser", "") for a in OURS]
# name -> (extra arguments, extra environment)
VARIANTS = {
    "default": ([], {}),
    "ours-size": (OURS, {}),
    "ours-size-fixed-upsampling": (OURS, {"CC_FREEZE_UPS": "1"}),
    "ours-size-adam": (OURS, {"CC_ADAM": "1"}),
    "ours-size-no-stabiliser": (NO_STABILISER, {}),
    "ours-size-no-finest": ([*OURS, "--latent_resolution_residue", "1-6"], {}),
}


def last_row(log: str) -> tuple[int, float, float]:
    """(iteration, PSNR, latent bpp) of the log's last validation row."""
    rows = [
        line.split()
        for line in log.splitlines()
        if line.strip()[:1].isdigit() and len(line.split()) >= 8 and line.split()[1] == "0.000000"
    ]
    row = rows[-1]  # loss nn_bpp latent_bpp dist_db psnr_db rate_bpp time_sec itr
    return int(row[7]), float(row[4]), float(row[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coolchic", type=Path, required=True, help="a Cool-chic checkout")
    parser.add_argument("--deps", type=Path, help="extra import path for Cool-chic's deps")
    parser.add_argument("--image", default="kodim15")
    parser.add_argument("--crop", default="256x384", help="HxW centre crop")
    parser.add_argument("--n-itr", type=int, default=1000)
    parser.add_argument("--lmbda", type=float, default=0.002)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="coolchic-ablation-"))
    code = work / "coolchic"
    shutil.copytree(args.coolchic, code, ignore=shutil.ignore_patterns(".git"))
    patch = HERE / "coolchic_short.patch"
    subprocess.run(["patch", "-p1", "-s", "-i", str(patch)], cwd=code, check=True)
    image = np.asarray(Image.open(KODAK / f"{args.image}.png").convert("RGB"))
    h, w = map(int, args.crop.split("x"))
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    image = np.ascontiguousarray(image[top : top + h, left : left + w])
    source = work / f"{args.image}-crop.png"
    Image.fromarray(image).save(source)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), CC_SHORT="1", CC_NORDOQ="1")
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (args.deps, code) if p)
    print(f"# {args.image} {args.crop}, {args.n_itr} iterations, lambda {args.lmbda}")
    print("| variant | iterations | PSNR | latent bpp | networks bpp | JPEG2000 at latent bpp |")
    print("|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        extra, extra_env = VARIANTS[name]
        out = work / name
        out.mkdir()
        command = [sys.executable, "cc_encode.py", "-i", str(source), "--n_itr"]
        command += [str(args.n_itr), "--lmbda", str(args.lmbda), "--workdir", f"{out}/"]
        command += ["--nobitstream", *extra]
        done = subprocess.run(
            command, cwd=code, env={**env, **extra_env}, capture_output=True, text=True
        )
        if done.returncode:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1]} |")
            continue
        itr, quality, latent = last_row(done.stdout)
        names, values = next(out.rglob("*results_encoder.tsv")).read_text().splitlines()[:2]
        nn_bpp = float(dict(zip(names.split(), values.split(), strict=False))["nn_bpp"])
        run = Jpeg2000Codec().run(image, latent, work / "ref.j2k")
        reference = psnr(original=image / 255, reconstruction=run.reconstruction / 255)
        print(
            f"| {name} | {itr} | {quality:.2f} | {latent:.4f} | {nn_bpp:.4f} | {reference:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
