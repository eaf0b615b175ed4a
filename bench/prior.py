"""Cohort priors measured (docs/PRIOR.md): which training transfers, what the bundled prior
is worth on Kodak, where to freeze, and how much in-domain data is worth.

    python bench/prior.py compare  # shared body vs meta-learned start, equal steps
    python bench/prior.py kodak    # kodim07/15/23, 0.3 bpp, default preset: with/without
    python bench/prior.py freeze --images kodim01,kodim03,...  # PSNR at every freeze depth
    python bench/prior.py cross    # prior on 12 Kodak images, tested on the other 12
    python bench/prior.py probe shared:1e-3:1500 reptile:1e-4:1500  # quick: no rate, a crop
    python bench/prior.py speed --freeze 1 --fit-steps 2000,3000  # the prior with fewer steps
    python bench/prior.py train --steps 10000 --stride 384x256 -o long.kprior  # prior variants

Every encode runs on one thread (`--threads 1`), and its row (PSNR of the written file,
bytes, seconds, CPU seconds of the fit, the load average) is appended to OUT/NAME.jsonl;
rows already there are skipped, so a run resumes. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kancoin import encode, prior_train  # noqa: E402
from kancoin import prior as priors  # noqa: E402
from kancoin.fit.cohort import CohortConfig  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
KODAK = DATA / "kodak"
BUNDLED = priors.BUNDLED / "photo.kprior"
COHORT = sorted((DATA / "cohort").glob("*.png")) + sorted((DATA / "large").glob("*.png"))
CROP = (768, 512)


def kodak(name: str) -> Path:
    return KODAK / f"{name}.png"


def done_rows(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {row["key"]: row for row in map(json.loads, path.read_text().splitlines())}


def run_encode(out: Path, key: str, image: Path, **options) -> dict:
    """One encode's row, computed once (resumable)."""
    rows = done_rows(out)
    if key in rows:
        return rows[key]
    started = time.process_time()
    load = os.getloadavg()[0]
    result = encode(image, threads=1, **options)
    row = {
        "key": key,
        "image": image.stem,
        "options": {k: str(v) for k, v in options.items()},
        "psnr": round(result.psnr, 3),
        "psnr_float": round(result.psnr_float, 3),
        "bytes": len(result.data),
        "bpp": round(8 * len(result.data) / result.header.signal.samples, 4),
        "model": result.header.spec.describe(),
        "freeze": 0 if result.header.prior is None else result.header.prior.freeze,
        "seconds": round(result.seconds, 1),
        "cpu_seconds": round(time.process_time() - started, 1),
        "fit_cpu_seconds": round(result.fit_cpu_seconds, 1),
        "load": [round(load, 2), round(os.getloadavg()[0], 2)],
    }
    with out.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row


def train_prior(path: Path, paths: list[Path], config: CohortConfig, crop=CROP) -> Path:
    """Train (once) and write a prior; its training CPU seconds go to PATH.json."""
    if path.exists():
        return path
    torch.set_num_threads(1)
    started = time.process_time()
    data, members = prior_train.build(paths, config, name=path.stem, crop=crop)
    path.write_bytes(data)
    _record(
        path,
        data,
        started,
        prior=str(path),
        method=config.method,
        steps=config.steps,
        members=members,
    )
    return path


def _record(path: Path, data: bytes, started: float, **fields) -> None:
    """A trained prior's record (its fields, size, CPU, stable ranks, rule) to PATH.json."""
    made = priors.from_bytes(data)
    info = {
        **fields,
        "bytes": len(data),
        "cpu_seconds": round(time.process_time() - started, 1),
        "stable_ranks": [round(r, 3) for r in made.stable_ranks()],
        "freeze_rule": made.rule_freeze(),
        "load": round(os.getloadavg()[0], 2),
    }
    path.with_suffix(".json").write_text(json.dumps(info) + "\n")
    print(json.dumps(info), flush=True)


def train_variant(args) -> None:
    """A prior variant trained on the cohort (never Kodak): longer, on overlapping tiles,
    another width or depth; written to OUT/NAME.kprior with its training record."""
    import numpy as np

    from kancoin.fit.cohort import members_from_images
    from kancoin.fit.cohort import train as train_body

    path = args.out / args.output
    if path.exists():
        print(f"{path} exists")
        return
    stride = tuple(map(int, args.stride.split("x"))) if args.stride else None
    config = CohortConfig(
        method="shared", steps=args.steps, width=args.width, layers=args.layers, lr=args.lr
    )
    started = time.process_time()
    images = prior_train.cohort_images(COHORT, CROP, stride)
    spec, tensors = train_body(members_from_images(images), config)
    digests = [priors.member_digest(np.round(i * 255).astype(np.uint8)) for i in images]
    data = priors.to_bytes(spec, tensors, members=digests, name=path.stem, dtype=1)
    path.write_bytes(data)
    _record(
        path,
        data,
        started,
        prior=path.name,
        id=priors.from_bytes(data).sha256[:8].hex(),
        steps=config.steps,
        lr=config.lr,
        width=config.width,
        layers=config.layers,
        stride=args.stride,
        members=len(images),
    )


def speed(args) -> None:
    """The second bar: the prior at depth K with fewer fit steps (each of --fit-steps), on
    real files, against the no-prior rows of `kodak` (OUT/freeze-PRESET.jsonl)."""
    out = args.out / f"speed-{args.preset}.jsonl"
    tag = args.prior.stem
    for steps in map(int, args.fit_steps.split(",")):
        for name in args.images.split(","):
            options = dict(bpp=0.3, preset=args.preset, prior=str(args.prior), freeze=args.freeze)
            if steps:
                options["steps"] = steps
            run_encode(out, f"{name}/{tag}-k{args.freeze}-s{steps}", kodak(name), **options)


def compare(args) -> None:
    """Shared body vs Reptile at equal member steps, tested on Kodak images at 0.3 bpp."""
    out = args.out / "compare.jsonl"
    found = {}
    for method in ("shared", "reptile"):
        config = CohortConfig(method=method, steps=args.steps, width=args.width, layers=args.layers)
        found[method] = train_prior(args.out / f"{method}.kprior", COHORT, config)
    for name in args.images.split(","):
        base = dict(bpp=0.3, preset=args.preset)
        run_encode(out, f"{name}/none", kodak(name), **base)
        for method, path in found.items():
            run_encode(out, f"{name}/{method}", kodak(name), prior=str(path), **base)


def at_depth(args, name: str, depth: int) -> dict:
    """One image at one freeze depth (0: no prior), in OUT/freeze-PRESET.jsonl: the rows
    `kodak` and `freeze` share."""
    out = args.out / f"freeze-{args.preset}.jsonl"
    options = dict(bpp=0.3, preset=args.preset)
    if depth:
        options.update(prior=str(args.prior), freeze=depth)
    return run_encode(out, f"{name}/freeze{depth}", kodak(name), **options)


def kodak_ab(args) -> None:
    """(a) kodim07/15/23 at 0.3 bpp: without the prior, and with it at the rule's depth."""
    rule = priors.load(args.prior).rule_freeze()
    rows = [(at_depth(args, n, 0), at_depth(args, n, rule)) for n in args.images.split(",")]
    for label, index in (("without", 0), ("with", 1)):
        psnr = sum(r[index]["psnr"] for r in rows) / len(rows)
        cpu = sum(r[index]["cpu_seconds"] for r in rows) / len(rows)
        print(f"{label} the prior: mean PSNR {psnr:.3f} dB, mean CPU {cpu:.1f} s")


def freeze_table(args) -> None:
    """(b) PSNR at every freeze depth 0 .. the prior's last stored hidden layer."""
    made = priors.load(args.prior)
    for name in args.images.split(","):
        for depth in range(made.max_freeze() + 1):
            at_depth(args, name, depth)
    print(f"stable-rank rule: freeze {made.rule_freeze()} (ranks {made.stable_ranks()})")


def cross(args) -> None:
    """(c) a prior trained on 12 Kodak images (odd numbers) against the bundled one, both
    tested on the other 12 (even numbers)."""
    out = args.out / f"cross-{args.preset}.jsonl"
    train_names = [f"kodim{i:02d}" for i in range(1, 25, 2)]
    test_names = [f"kodim{i:02d}" for i in range(2, 25, 2)][: args.count]
    config = CohortConfig(method="shared", steps=args.steps, width=args.width)
    kodak_prior = train_prior(
        args.out / "kodak12.kprior", [kodak(n) for n in train_names], config, crop=None
    )
    for name in test_names:
        base = dict(bpp=0.3, preset=args.preset)
        run_encode(out, f"{name}/none", kodak(name), **base)
        run_encode(out, f"{name}/kodak12", kodak(name), prior=str(kodak_prior), **base)
        run_encode(out, f"{name}/bundled", kodak(name), prior=str(args.prior), **base)


def probe(args) -> None:
    """Quick transfer probe without rate or quantization: METHOD:LR:STEPS priors (6 x width,
    trained on the cohort), each loaded into a 6-layer SIREN frozen at 1..4 layers and
    fitted 200 steps (20 % uniform batches, lr 1.5e-3) to a 256x256 crop of kodim03,
    against the same SIREN from scratch."""
    from kancoin.fit import FitConfig, fit
    from kancoin.fit.cohort import members_from_images, train
    from kancoin.models import SirenSpec
    from kancoin.signals import image_grid, load_image

    members = members_from_images(prior_train.cohort_images(COHORT, CROP))
    crop = load_image(kodak("kodim03"))[128:384, 256:512]
    coords, targets = image_grid(256, 256), torch.from_numpy(crop.reshape(-1, 3).copy())
    spec = SirenSpec(in_features=2, out_features=3, layers=6, width=args.width)
    settings = FitConfig(steps=200, lr=1.5e-3, sampler="uniform", batch_fraction=0.2)

    def fitted(tensors, freeze: int) -> float:
        torch.manual_seed(0)
        model = spec.build()
        if tensors:
            data = priors.to_bytes(spec, tensors, members=[], name="probe", dtype=2)
            priors.from_bytes(data).apply(model, freeze)
        return round(fit(model, coords, targets, settings).psnr, 2)

    print(f"from scratch: {fitted(None, 0)} dB", flush=True)
    for item in args.runs:
        method, lr, steps = item.split(":")
        config = CohortConfig(
            method=method, lr=float(lr), steps=int(steps), layers=6, width=args.width
        )
        _, tensors = train(members, config)
        stds = [round(float(tensors[i].std()), 4) for i in range(0, len(tensors), 2)]
        frozen = [fitted(tensors, k) for k in (1, 2, 3, 4)]
        print(f"{item}: weight std per layer {stds}; frozen 1..4: {frozen} dB", flush=True)


def grid(args) -> None:
    """The latent-grid variant (bench/grid_prior.py): networks trained on cohort crops,
    frozen for Kodak crops, their bits not counted; against the plain grid (bench/grid.py's
    `base`: the codec as it is) at the same steps, on the same crops."""
    import grid as grid_bench
    import grid_prior
    import numpy as np

    from kancoin.models.grid import GridSpec
    from kancoin.signals import load_image

    height, width = map(int, args.crop.split("x"))
    out = args.out / "grid-crops.jsonl"
    tag = f"h{args.hidden}c{args.context_hidden}-m{args.members}-s{args.prior_steps}-l{args.lam:g}"
    cache = args.out / f"grid-networks-{tag}.npz"
    spec = GridSpec(in_features=2, out_features=3, height=height, width=width)
    spec = spec.replace(hidden=args.hidden, context_hidden=args.context_hidden)
    if cache.exists():
        flat = dict(np.load(cache))
        state = {k: {} for k in grid_prior.SHARED}
        for key, value in flat.items():
            part, name = key.split("/", 1)
            state[part][name] = torch.from_numpy(value)
    else:
        images = []
        for path in COHORT[: args.members]:  # never Kodak: ../shared/data/cohort and large
            image = load_image(path)
            image = image if image.shape[2] == 3 else np.repeat(image[:, :, :1], 3, axis=2)
            images.append(grid_prior.crop_centre(image, height, width))
        state, record = grid_prior.train_networks(images, spec, args.prior_steps, args.lam)
        flat = {f"{k}/{n}": t.numpy() for k, v in state.items() for n, t in v.items()}
        np.savez(cache, **flat)
        record.update(key=f"networks/{tag}", load=round(os.getloadavg()[0], 2))
        with out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
    rows = done_rows(out)
    changes = {"hidden": args.hidden, "context_hidden": args.context_hidden}
    for name in args.images.split(","):
        key = f"{name}/plain-s{args.grid_steps}"
        if key not in rows:
            started, load = time.process_time(), os.getloadavg()[0]
            row = grid_bench.run(kodak(name), 0.3, args.grid_steps, "base", 0, (height, width))
            row.update(key=key, cpu_seconds=round(time.process_time() - started, 1))
            row["load"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
        key = f"{name}/frozen-{tag}-s{args.grid_steps}"
        if key not in rows:
            load = os.getloadavg()[0]
            image = grid_prior.crop_centre(load_image(kodak(name)), height, width)
            row = grid_prior.encode_frozen(image, state, changes, args.grid_steps)
            row.update(key=key, load=[round(load, 2), round(os.getloadavg()[0], 2)])
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what",
        choices=["compare", "kodak", "freeze", "cross", "probe", "speed", "train", "grid"],
    )
    parser.add_argument("runs", nargs="*", help="probe: METHOD:LR:STEPS")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "prior")
    parser.add_argument("--images", default="kodim07,kodim15,kodim23")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--prior", type=Path, default=BUNDLED)
    parser.add_argument("--steps", type=int, default=CohortConfig.steps)
    parser.add_argument("--width", type=int, default=CohortConfig.width)
    parser.add_argument("--layers", type=int, default=CohortConfig.layers)
    parser.add_argument("--count", type=int, default=12, help="cross: test images")
    parser.add_argument("--freeze", type=int, default=1, help="speed: layers frozen")
    parser.add_argument("--fit-steps", default="2000,3000", help="speed: fit steps (0: preset)")
    parser.add_argument("--stride", help="train: WxH tile stride (overlapping tiles)")
    parser.add_argument("--lr", type=float, default=CohortConfig.lr, help="train")
    parser.add_argument("-o", "--output", default="variant.kprior", help="train: file name")
    parser.add_argument("--crop", default="256x384", help="grid: HxW centre crops")
    parser.add_argument("--grid-steps", type=int, default=300, help="grid: fit steps")
    parser.add_argument("--members", type=int, default=9, help="grid: cohort crops")
    parser.add_argument("--prior-steps", type=int, default=2700, help="grid: member steps")
    parser.add_argument("--hidden", type=int, default=16, help="grid: synthesis width")
    parser.add_argument("--context-hidden", type=int, default=16, help="grid: context width")
    parser.add_argument("--lam", type=float, default=0.01, help="grid: prior's lambda")
    args = parser.parse_args()
    if not KODAK.is_dir():
        sys.exit(f"needs {KODAK}")
    if args.what == "grid" and args.images == "kodim07,kodim15,kodim23":
        args.images = "kodim15,kodim23"  # docs/GRID.md's crop protocol
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    commands = {"compare": compare, "kodak": kodak_ab, "freeze": freeze_table, "cross": cross}
    commands.update(probe=probe, speed=speed, train=train_variant, grid=grid)
    commands[args.what](args)


if __name__ == "__main__":
    main()
