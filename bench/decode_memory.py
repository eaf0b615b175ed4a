"""Peak memory of decoding a .inr to a large image, in a fresh process per size.

    .venv/bin/python bench/decode_memory.py [--sizes 768x512,4608x3072]

Encodes a small test image once (a few steps: memory does not depend on quality), then for
each size decodes it to a PNG in a subprocess and prints that process's peak resident set
(ru_maxrss) and the bare interpreter-with-kancoin baseline, so the difference is the
decode's own. The output image alone is width x height x 3 x 4 bytes as float32.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys, kancoin
from kancoin import render
from kancoin.cli import main
if int(sys.argv[4]):
    render.chunk_for = lambda model, _chunk=int(sys.argv[4]): _chunk
code = 0 if sys.argv[2] == 'baseline' else main(
    ['decode', sys.argv[1], '--size', sys.argv[2], '-o', sys.argv[3], '-q'])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="768x512,4608x3072")
    parser.add_argument(
        "--chunks",
        default="0,1000000000",
        help="render chunks to compare, in pixels: 0 = sized by memory (kancoin.render), "
        "and one chunk (the whole image at once)",
    )
    args = parser.parse_args()
    import numpy as np

    import kancoin

    with tempfile.TemporaryDirectory() as directory:
        inr = Path(directory) / "x.inr"
        y, x = np.mgrid[0:64, 0:96]
        image = np.stack([0.5 + 0.4 * np.sin(x / 9 + c + y / 13) for c in range(3)], -1)
        kancoin.encode(image.astype(np.float32), inr, bpp=0.3 * 8, steps=20, preset="fast")
        base = subprocess.run(
            [sys.executable, "-c", CHILD, str(inr), "baseline", "", "1"],
            capture_output=True,
            text=True,
        )
        print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
        print(f"baseline (python + kancoin + torch imported): {base.stdout.strip()} MB peak RSS")
        for size in args.sizes.split(","):
            for band in args.chunks.split(","):
                out = Path(directory) / f"{size}-{band}.png"
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, str(inr), size, str(out), band],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                width, height = (int(v) for v in size.split("x"))
                image_mb = width * height * 3 * 4 / 2**20
                peak = done.stdout.split()[-1]
                print(
                    f"decode to {size}, chunks: {int(band) or 'sized by memory'} pixels, {peak} MB "
                    f"peak RSS (the float32 image alone: {image_mb:.0f} MB)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
