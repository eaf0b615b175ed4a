"""What fraction of the CPU's SGEMM speed a real encode's fit reaches.

    .venv/bin/python bench/fit_roof.py [--image kodim15.png] [--steps 120] [--step fast]

Runs `kancoin encode IMAGE --bpp 0.3 --sampler full --steps N --json` (into a temporary
directory) and counts 6 x params x pixels x steps over its fit_seconds; the roof is the best
SGEMM GFLOP/s measured just before and just after, in this same run. Prints the percentage,
and the same ratio per CPU second (all threads), which a busy machine skews much less: there
both the fit and the SGEMM get whatever share of the cores the other processes leave.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from step_speed import sgemm_wall_and_cpu

from kancoin.datasets import local_kodak_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="kodim15.png")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--step", choices=["fast", "autograd"], default="fast")
    args = parser.parse_args(argv)
    kodak = local_kodak_dir()
    if kodak is None:
        print("Kodak images not found (KODAK_DIR or ../shared/data/kodak)", file=sys.stderr)
        return 1
    before, cpu_before = sgemm_wall_and_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            str(Path(sys.executable).with_name("kancoin")),
            "encode",
            str(kodak / args.image),
            "-o",
            str(Path(tmp) / "out.inr"),
            "--bpp",
            "0.3",
            "--sampler",
            "full",
            "--steps",
            str(args.steps),
            "--step",
            args.step,
            "--json",
            "-q",
        ]
        result = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
    after, cpu_after = sgemm_wall_and_cpu()
    roof, cpu_roof = max(before, after), max(cpu_before, cpu_after)
    width, height = (int(v) for v in result["signal"].split()[1].split("x")[:2])
    flops = 6 * result["params"] * width * height * result["steps"]
    achieved = flops / result["fit_seconds"] / 1e9
    cpu_achieved = flops / result["fit_cpu_seconds"] / 1e9
    print(f"encode: {result['model']}, {result['steps']} full steps, step {args.step}")
    print(
        f"fit: {result['fit_seconds']:.1f} s, {achieved:.1f} GFLOP/s "
        f"({result['fit_cpu_seconds']:.1f} CPU s, {cpu_achieved:.1f} GFLOP per CPU s)"
    )
    print(
        f"SGEMM: {before:.1f} GFLOP/s before, {after:.1f} after "
        f"({cpu_before:.1f} and {cpu_after:.1f} GFLOP per CPU s)"
    )
    print(f"fit reaches {100 * achieved / roof:.1f} % of SGEMM")
    print(f"per CPU second: {100 * cpu_achieved / cpu_roof:.1f} % of SGEMM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
