"""Samplers side by side: PSNR at fixed wall-clock budgets, and the budget to reach a PSNR.

Every (image, budget) runs all samplers one after another, so drifting machine load hits
them alike. Each cell is a real `kancoin.encode` at the codec's default architecture and
schedule for that budget; psnr_float is the float network before quantization. The budget
needed for a threshold is interpolated (in log time) between the budgets that bracket it.

    python bench/sampling.py                                   # the full bench (over an hour)
    python bench/sampling.py --images kodim15 --budgets 15,45  # a reduced run
    python bench/sampling.py --samplers uniform,importance,uniform@0.05,importance@0.05  # fractions

A column `NAME@F` runs sampler NAME with a batch fraction F instead of the preset's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import kancoin
from kancoin.datasets import kodak_dir
from kancoin.fit import SamplerOptions

DEFAULT_IMAGES = "kodim01,kodim05,kodim15,kodim19,kodim23"
VARIANTS = {  # column name -> (sampler, nint mode)
    "full": ("full", None),
    "uniform": ("uniform", None),
    "error": ("error", None),
    "importance": ("importance", None),
    "nint": ("nint", "paper"),
    "nint-leverage": ("nint", "importance"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=DEFAULT_IMAGES, help="Kodak names, comma-separated")
    parser.add_argument("--budgets", default="15,30,60,120", help="seconds, comma-separated")
    parser.add_argument("--thresholds", default="24,26,28", help="psnr_float targets in dB")
    parser.add_argument("--samplers", default=",".join(VARIANTS), help="columns to run")
    parser.add_argument("--bpp", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--json", type=Path, help="also write every run as JSON here")
    args = parser.parse_args(argv)

    budgets = sorted(float(b) for b in args.budgets.split(","))
    thresholds = [float(t) for t in args.thresholds.split(",")]
    variants = args.samplers.split(",")
    unknown = [v for v in variants if v.split("@")[0] not in VARIANTS]
    if unknown:
        parser.error(f"unknown samplers {unknown} (have: {', '.join(VARIANTS)})")
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = kodak_dir(download=False)
    images = [folder / f"{name.removesuffix('.png')}.png" for name in args.images.split(",")]

    load_before = os.getloadavg()
    runs = []
    for image in images:
        for budget in budgets:
            for variant in variants:
                runs.append(_run(image, variant, budget, args.bpp, args.seed))
                print(_describe(runs[-1]), file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    print(
        f"# {len(images)} images, bpp {args.bpp}, seed {args.seed}, threads "
        f"{torch.get_num_threads()}, load average {load_before[0]:.1f} -> {load_after[0]:.1f}"
    )
    print(table(runs, variants, budgets, thresholds))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "load": [load_before, load_after]}))
    return 0


def _run(image: Path, variant: str, budget: float, bpp: float, seed: int) -> dict:
    name, _, fraction = variant.partition("@")
    sampler, mode = VARIANTS[name]
    options = SamplerOptions() if mode is None else SamplerOptions(nint_mode=mode)
    started = time.perf_counter()
    result = kancoin.encode(
        image,
        bpp=bpp,
        time_budget=budget,
        seed=seed,
        sampler=sampler,
        sampler_options=options,
        batch_fraction=float(fraction) if fraction else None,
    )
    return {
        "image": image.stem,
        "sampler": variant,
        "budget": budget,
        "psnr_float": result.psnr_float,
        "psnr": result.psnr,
        "bpp": result.bpp,
        "steps": result.steps,
        "fit_seconds": result.fit_seconds,
        "seconds": time.perf_counter() - started,
    }


def _describe(run: dict) -> str:
    return (
        f"{run['image']} {run['sampler']:>10} {run['budget']:>5.0f} s: "
        f"float {run['psnr_float']:.2f} dB, coded {run['psnr']:.2f} dB, {run['steps']} steps"
    )


def budget_to_reach(points: list[tuple[float, float]], threshold: float) -> float:
    """Interpolated budget (log time) at which psnr first reaches threshold; inf if never.

    `points` are (budget, psnr) pairs sorted by budget.
    """
    previous = None
    for budget, value in points:
        if value >= threshold:
            if previous is None or previous[1] >= value:
                return budget
            (b0, v0), (b1, v1) = previous, (budget, value)
            share = (threshold - v0) / (v1 - v0)
            return math.exp(math.log(b0) + share * (math.log(b1) - math.log(b0)))
        previous = (budget, value)
    return math.inf


def table(runs: list[dict], variants: list[str], budgets: list[float], thresholds) -> str:
    """Medians over images: psnr_float per budget, steps at the largest, budget per target."""
    images = sorted({r["image"] for r in runs})
    cells = {(r["image"], r["sampler"], r["budget"]): r for r in runs}
    head = ["sampler"] + [f"{b:g} s" for b in budgets] + [f"steps@{budgets[-1]:g}s"]
    head += [f"to {t:g} dB" for t in thresholds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant in variants:
        row = [variant]
        for budget in budgets:
            row.append(f"{_median(cells, images, variant, budget, 'psnr_float'):.2f}")
        row.append(f"{_median(cells, images, variant, budgets[-1], 'steps'):.0f}")
        for threshold in thresholds:
            needed = statistics.median(
                budget_to_reach(
                    [(b, cells[(image, variant, b)]["psnr_float"]) for b in budgets], threshold
                )
                for image in images
            )
            if not math.isfinite(needed):
                row.append(f"> {budgets[-1]:g} s")
            elif needed <= budgets[0]:
                row.append(f"<= {budgets[0]:g} s")  # reached at the smallest budget run
            else:
                row.append(f"{needed:.0f} s")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _median(cells, images, variant, budget, key) -> float:
    return statistics.median(cells[(image, variant, budget)][key] for image in images)


if __name__ == "__main__":
    sys.exit(main())
