"""CPU seconds of one forward + backward of the grid's synthesis alone (docs/GRID.md).

The per-pixel synthesis of a few GridSpec variants (ReLU MLP, KAN) on random features for
every pixel of an HxW image, one thread: what a training step spends in it. CPU time depends
on the machine's load, so the load average is printed with it.

  python bench/grid_synthesis.py --size 256x384
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from kancoin.models import GridSpec

# name -> GridSpec changes (crops size the ReLU synthesis at 7-8-8-3, full images 7-16-16-3)
VARIANTS: dict[str, dict] = {
    "relu-8": {"hidden": 8},
    "relu-16": {"hidden": 16},
    "kan1-h5": {"activation": 3, "hidden": 5, "hidden_layers": 1},
    "kan-h3": {"activation": 3, "hidden": 3},
    "kan1-h14": {"activation": 3, "hidden": 14, "hidden_layers": 1},
}


def seconds_per_pass(changes: dict, height: int, width: int, repeats: int) -> float:
    spec = GridSpec(in_features=2, out_features=3, height=height, width=width).replace(**changes)
    torch.manual_seed(0)
    model = spec.build()
    features = torch.randn(height * width, spec.levels, requires_grad=True)
    targets = torch.rand(height * width, 3)

    def one_pass() -> None:
        (model.synthesize(features) - targets).pow(2).mean().backward()

    one_pass()  # allocations and first-call costs
    started = time.process_time()
    for _ in range(repeats):
        one_pass()
    return (time.process_time() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x384", help="HxW pixels (a crop by default)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    height, width = map(int, args.size.split("x"))
    print("| variant | synthesis weights | CPU s per forward + backward | load |")
    print("|---|---|---|---|")
    for name in args.variants.split(","):
        changes = VARIANTS[name]
        spec = GridSpec(in_features=2, out_features=3, height=8, width=8).replace(**changes)
        weights = sum(torch.Size(shape).numel() for _, shape in spec.synthesis_shapes())
        cpu = seconds_per_pass(changes, height, width, args.repeats)
        print(f"| {name} | {weights} | {cpu:.3f} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
