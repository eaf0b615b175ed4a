"""Wall time of one small sweep on each engine, and Ray's overhead per task.

    python bench/engines.py                  # 2 images x 2 rates x (siren, jpeg2000), 2 CPUs
    python bench/engines.py --steps 300 --images 4

Each engine runs the same sweep into a fresh directory (one torch thread per row, two rows at
a time). The overhead per task is measured separately with a task that does nothing: the
time for N empty tasks divided by N, after the cluster has started (start-up is reported on
its own). Timings need a quiet machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kancoin.engines import make_engine
from kancoin.rd import SweepConfig, run_sweep


def images(directory: Path, count: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    y, x = np.mgrid[0:size, 0:size] / size
    for index in range(count):
        phase = rng.uniform(0, 6.28, 3)
        planes = [0.5 + 0.4 * np.sin(6.28 * (x + 0.5 * y) * (1 + c) + phase[c]) for c in range(3)]
        noise = rng.normal(0, 0.03, (size, size, 3))
        pixels = np.clip(np.stack(planes, -1) + noise, 0, 1)
        path = directory / f"bench{index}.png"
        Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def sweep_seconds(inputs, out: Path, engine: str, args) -> float:
    config = SweepConfig(
        targets=(1.0, 2.0),
        codecs=("siren", "jpeg2000"),
        preset="fast",
        steps=args.steps,
        workers=args.workers,
        threads=1,
        engine=engine,
    )
    started = time.perf_counter()
    run_sweep(inputs, out, config, log=lambda _: None)
    return time.perf_counter() - started


def nothing() -> None:
    return None


def ray_overhead(tasks: int, workers: int) -> tuple[float, float]:
    started = time.perf_counter()
    with make_engine("ray", workers=workers) as engine:
        startup = time.perf_counter() - started
        list(engine.run(nothing, [()] * 8))  # warm the workers up
        started = time.perf_counter()
        list(engine.run(nothing, [()] * tasks))
        per_task = (time.perf_counter() - started) / tasks
    return startup, per_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=200, help="empty tasks for the overhead")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        inputs = images(root, args.images, args.size)
        rows = args.images * 2 * 2
        local = sweep_seconds(inputs, root / "local", "local", args)
        ray = sweep_seconds(inputs, root / "ray", "ray", args)
    startup, per_task = ray_overhead(args.tasks, args.workers)
    print(
        f"sweep of {rows} rows ({args.images} images {args.size}px x 2 rates x siren, jpeg2000; "
        f"{args.steps} steps; {args.workers} workers of 1 thread)"
    )
    print("| engine | wall s | s per row |\n|---|---|---|")
    print(f"| local | {local:.1f} | {local / rows:.2f} |")
    print(f"| ray (incl. cluster start) | {ray:.1f} | {ray / rows:.2f} |")
    print(f"ray / local: {ray / local:.2f}x")
    print(f"ray: cluster start {startup:.2f} s; overhead per empty task {1000 * per_task:.2f} ms")
    after = os.getloadavg()[0]
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: {after:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
