"""Training-step speed against the machine's matrix-multiply roof, and decode time.

    .venv/bin/python bench/step_speed.py [--repeats 3] [--images kodim15.png,kodim23.png]

In one run: a large SGEMM's GFLOP/s (the roof); the training step's GFLOP/s, counting
6 x params x coordinates per step, for full and 20 % batches of a 768x512 image, plain
autograd against the step the trainer selects ("fast"), with the speed-up; and the decode
time of Kodak images next to Pillow's JPEG2000 decode of the same image at the same rate.
Steps of the two kinds alternate, so a busy machine slows both alike; the best of the
repeats is kept (noise only ever slows a run down).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

import kancoin
from kancoin import rate
from kancoin.datasets import local_kodak_dir
from kancoin.fit.select import select_step
from kancoin.models import ModelSpec, SirenSpec, spec_class_by_name
from kancoin.presets import get_preset
from kancoin.signals import ImageInfo

WIDTH, HEIGHT = 768, 512
DECODE_BPP = 0.3


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of size x size float32 products with torch's threads."""
    return sgemm_wall_and_cpu(size, repeats)[0]


def sgemm_wall_and_cpu(size: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """Best GFLOP/s per wall-clock second and per CPU second (all threads) of SGEMMs."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    wall, cpu = 0.0, 0.0
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        torch.mm(a, b, out=out)
        wall = max(wall, 2 * size**3 / (time.perf_counter() - start) / 1e9)
        cpu = max(cpu, 2 * size**3 / max(1e-9, time.process_time() - cpu_start) / 1e9)
    return wall, cpu


def default_kodak_spec() -> ModelSpec:
    """The SIREN the codec plans for a Kodak image at 0.3 bpp with the default preset."""
    base = SirenSpec(in_features=2, out_features=3)
    info = ImageInfo(height=HEIGHT, width=WIDTH, channels=3)
    return rate.plan(
        base,
        info,
        0.3 * info.samples,
        max_layers=get_preset("default").max_layers,
        bits_per_param=SirenSpec.bits_per_param,
    )


def kan_spec() -> ModelSpec | None:
    try:
        return spec_class_by_name("kan")(in_features=2, out_features=3)
    except KeyError:
        return None


def step_seconds(spec: ModelSpec, fraction: float, repeats: int) -> dict[str, float]:
    """Best seconds per step for each step kind, the kinds alternating."""
    torch.manual_seed(0)
    model = spec.build()
    count = WIDTH * HEIGHT
    coords = torch.rand(count, 2) * 2 - 1
    targets = torch.rand(count, 3)
    batch = max(1, round(count * fraction))
    steps = {kind: select_step(model, torch.device("cpu"), kind) for kind in ("autograd", "fast")}
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeats + 1):  # the first round warms up
        for kind, step in steps.items():
            indices = torch.randperm(count)[:batch]
            batch_coords, batch_targets = coords[indices], targets[indices]
            model.zero_grad(set_to_none=False)
            start = time.perf_counter()
            step(model, batch_coords, batch_targets, None)
            best[kind] = min(best[kind], time.perf_counter() - start)
    return best


def decode_seconds(image: Path, repeats: int) -> tuple[float, float]:
    """Median seconds for kancoin's and Pillow's JPEG2000 decode of `image` at 0.3 bpp."""
    with tempfile.TemporaryDirectory() as tmp:
        inr = Path(tmp) / "image.inr"
        kancoin.encode(image, inr, bpp=DECODE_BPP, steps=2, force=True)  # quality is irrelevant
        ours = []
        for _ in range(repeats):
            start = time.perf_counter()
            kancoin.decode(inr)
            ours.append(time.perf_counter() - start)
    source = Image.open(image).convert("RGB")
    buffer = io.BytesIO()
    ratio = 24 / DECODE_BPP
    source.save(buffer, format="JPEG2000", quality_mode="rates", quality_layers=[ratio])
    data = buffer.getvalue()
    theirs = []
    for _ in range(repeats):
        start = time.perf_counter()
        Image.open(io.BytesIO(data)).load()
        theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", default="kodim15.png,kodim23.png")
    parser.add_argument("--skip-decode", action="store_true")
    args = parser.parse_args(argv)

    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}")
    roof = sgemm_gflops()
    print(f"SGEMM 2048^3: {roof:.1f} GFLOP/s (the roof)\n")
    specs = [("siren 10x40", SirenSpec(in_features=2, out_features=3))]
    specs.append((f"kodak 0.3 bpp: {default_kodak_spec().describe()}", default_kodak_spec()))
    if kan_spec() is not None:
        specs.append((kan_spec().describe(), kan_spec()))
    header = (
        f"{'model':<36} {'batch':>5} {'params':>6} {'autograd':>15} {'fast':>15} "
        f"{'speed-up':>8} {'fast ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, spec in specs:
        for fraction in (1.0, 0.2):
            seconds = step_seconds(spec, fraction, args.repeats)
            flops = 6 * spec.num_params() * round(WIDTH * HEIGHT * fraction)
            cells = {k: flops / s / 1e9 for k, s in seconds.items()}
            print(
                f"{name:<36} {fraction:>5.0%} {spec.num_params():>6} "
                f"{cells['autograd']:>6.1f} ({100 * cells['autograd'] / roof:>4.1f}%) "
                f"{cells['fast']:>6.1f} ({100 * cells['fast'] / roof:>4.1f}%) "
                f"{seconds['autograd'] / seconds['fast']:>7.1f}x "
                f"{1000 * seconds['fast']:>8.1f}",
                flush=True,
            )
    print(f"\nroof again: SGEMM {sgemm_gflops():.1f} GFLOP/s")

    if args.skip_decode:
        return 0
    kodak = local_kodak_dir()
    if kodak is None:
        print("decode: Kodak images not found (KODAK_DIR or ../shared/data/kodak); skipped")
        return 0
    print(f"\n{'decode (768x512)':<20} {'kancoin s':>10} {'JPEG2000 s':>11}")
    for name in args.images.split(","):
        ours, theirs = decode_seconds(kodak / name, args.repeats)
        print(f"{name:<20} {ours:>10.3f} {theirs:>11.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
