"""`make demo`: encode a real photograph at 0.3 bpp, decode it at 1x and 2x, describe the file.

Runs the same commands a user would type (through kancoin.cli.main) on the photo bundled in
the package (kancoin/data/chelsea.png: scikit-image's `chelsea`, CC0, 451x300), offline.
`--kodak kodim23.png` takes a Kodak image instead ($KODAK_DIR, ../shared/data/kodak, or a
SHA-256-checked download).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from kancoin.cli import main as kancoin
from kancoin.datasets import kodak_image
from kancoin.errors import KancoinError

BUNDLED = Path(str(resources.files("kancoin.data").joinpath("chelsea.png")))


def run(*argv: object) -> None:
    args = [str(a) for a in argv]
    print("$ kancoin " + " ".join(args), flush=True)
    code = kancoin(args)
    if code:
        sys.exit(code)


def demo(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--kodak", help="a Kodak image name instead of the bundled photo")
    parser.add_argument("--bpp", default="0.3")
    parser.add_argument("--preset", default="fast", help="fast | default | best")
    parser.add_argument(
        "--steps", type=int, help="fit steps instead of the preset's (a quick check)"
    )
    args = parser.parse_args(argv)
    source = BUNDLED
    if args.kodak:
        try:
            source = kodak_image(args.kodak)
        except KancoinError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 3
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / Path(source).stem
    inr = stem.with_suffix(".inr")
    steps = ["--steps", args.steps] if args.steps else []
    run("encode", source, "-o", inr, "--bpp", args.bpp, "--preset", args.preset, *steps, "--force")
    run("info", inr)
    run("decode", inr, "-o", f"{stem}_decoded.png", "--force")
    run("decode", inr, "-o", f"{stem}_x2.png", "--scale", "2", "--force")
    print(f"\ndone: {inr} and the decoded images are in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(demo())
