"""Cool-chic's own encoder on this CPU: quality against wall time, beside JPEG2000.

Issue 14 asks the latent grid to pass JPEG2000 in 5 minutes on 2 CPU cores. This runs the
reference implementation (a Cool-chic checkout the user provides: nothing is downloaded)
on one image and prints every validation row of its log as it trains: wall seconds,
iteration, PSNR and its estimated rate. When it writes its bitstream, the real file's
PSNR and bpp (Cool-chic's own decode, results_decoder.tsv) follow, then JPEG2000 (with the
colour transform, kancoin.rd.baselines) at that rate. docs/GRID.md quotes it.

Cool-chic needs `einops`, `ConfigArgParse`, `fvcore` and `constriction` importable (pass
`--deps DIR` for a `pip install --target DIR` of them); its image path imports torchvision
only for `to_tensor`, so a stub will do where torchvision does not match the torch build.

  python bench/coolchic_cpu.py --coolchic /tmp/cc --image kodim15 --n-itr 2000 --lmbda 0.002
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kancoin.rd.baselines import Jpeg2000Codec
from kancoin.signals import psnr

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"
# a validation row: loss nn_bpp latent_bpp dist_db psnr_db rate_bpp time_sec itr ...
ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+(\d+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coolchic", type=Path, required=True, help="a Cool-chic checkout")
    parser.add_argument("--deps", type=Path, help="extra import path for Cool-chic's deps")
    parser.add_argument("--image", default="kodim15")
    parser.add_argument("--n-itr", type=int, default=2000, help="its --n_itr (at least 2000)")
    parser.add_argument("--lmbda", type=float, default=0.002)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nobitstream", action="store_true", help="training rows only")
    args = parser.parse_args()

    image_path = KODAK / f"{args.image}.png"
    work = Path(tempfile.mkdtemp(prefix="coolchic-"))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join(
        str(p) for p in (args.deps, args.coolchic, env.get("PYTHONPATH")) if p
    )
    command = [
        sys.executable,
        str(args.coolchic / "cc_encode.py"),
        "-i",
        str(image_path),
        "-o",
        str(work / "out.cool"),
        "--workdir",
        str(work),
        "--n_itr",
        str(args.n_itr),
        "--lmbda",
        str(args.lmbda),
    ] + (["--nobitstream"] if args.nobitstream else [])
    print(f"# {' '.join(command)}")
    print(f"# load before: {os.getloadavg()[0]:.2f}, {args.threads} threads")
    print("| wall s | iteration | PSNR dB (float nets, rounded latents) | estimated bpp |")
    print("|---|---|---|---|")
    started = time.perf_counter()
    seen: set[int] = set()  # a phase's last row is printed again at its end
    with subprocess.Popen(
        command, cwd=args.coolchic, env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            match = ROW.match(line)
            if match and int(match[3]) not in seen:
                quality, bpp, itr = float(match[1]), float(match[2]), int(match[3])
                seen.add(itr)
                wall = time.perf_counter() - started
                print(f"| {wall:.0f} | {itr} | {quality:.2f} | {bpp:.4f} |", flush=True)
    wall = time.perf_counter() - started
    print(f"# exit {process.returncode} after {wall:.0f} s wall, load {os.getloadavg()[0]:.2f}")
    results = list(work.rglob("results_decoder.tsv"))
    if not results:
        return
    names, values = results[0].read_text().splitlines()[:2]  # space-padded columns
    row = dict(zip(names.split(), values.split(), strict=True))
    bpp = float(row["rate_bpp"])
    size = (work / "out.cool").stat().st_size
    print(f"file: {size} bytes, {bpp:.4f} bpp, PSNR {float(row['psnr_db']):.2f} dB")
    image = np.asarray(Image.open(image_path).convert("RGB"))
    run = Jpeg2000Codec().run(image, bpp, work / "ref.j2k")
    reference = psnr(original=image / 255, reconstruction=run.reconstruction / 255)
    print(f"JPEG2000 (mct=1) at {bpp:.4f} bpp: PSNR {reference:.2f} dB")


if __name__ == "__main__":
    main()
