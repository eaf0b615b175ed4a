"""Screen latent context models on a grid file's fixed integer latents (docs/GRID.md).

A change of the context model moves the latents' rate by a few per cent, below the noise of
a full training run (+-0.3 dB per crop). Here the latents are held fixed (the integers of a
real file) and only a context model of each feature set is fitted to them (the float twin's
Laplace bits, Adam, cosine), so two feature sets compare without training noise. Printed
per variant: bits of the latents, the network's weights, and the net change against the
first variant with the weights priced at `--bits-per-weight` (grid files measure ~3.6).

Feature sets (each + the coarser level's 3x3 around the parent, as kancoin.latents):
  o0      today's checkerboard: 4 neighbours for the non-anchor half, + its flag
  o1      four passes by (i % 2, j % 2): A parent only, B its 4 diagonal A neighbours, C
          then D their 4 decoded neighbours; 4 neighbour slots + 3 pass flags
  o2      four passes, 8 neighbour slots (D also sees its 4 diagonal C neighbours)
  o2far   o2 + the 12 neighbours at distance 2 where decoded
  oracle  all 8 neighbours for every latent (not decodable: a bound on same-level context)
  suffixes: +p5 parent 5x5 instead of 3x3, +grand the level two up (3x3), +par the
  position inside the parent (i % 2, j % 2); ":H:L" hidden width H and L hidden layers.

  python bench/grid_context.py --image kodim15 --crop 256x384 --steps 400 \\
      --variants o0,o1,o2,o0:16:2,o1:16:2
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kancoin import adapters, decoder, grid_codec, latents
from kancoin.config import EncodeConfig

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"
CROSS = [(-1, 0), (1, 0), (0, -1), (0, 1)]
DIAGONAL = [(-1, 1), (1, -1), (-1, -1), (1, 1)]  # o1's slots: up, down, left, right turned 45
FAR = (
    [(-2, 0), (2, 0), (0, -2), (0, 2)]
    + [(a, b) for a in (-1, 1) for b in (-2, 2)]
    + [(a, b) for a in (-2, 2) for b in (-1, 1)]
)
PASS_OF_PARITY = torch.tensor([[0, 2], [3, 1]])  # A = (even, even) 0, B 1, C 2, D 3


def _shift(x: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """x[i + di, j + dj], zero outside."""
    h, w = x.shape
    padded = F.pad(x[None, None], (3, 3, 3, 3))[0, 0]
    return padded[3 + di : 3 + di + h, 3 + dj : 3 + dj + w]


def _coarser(level: torch.Tensor, coarse: torch.Tensor | None, factor: int, radius: int):
    h, w = level.shape
    size = (2 * radius + 1) ** 2
    if coarse is None:
        return [torch.zeros_like(level)] * size
    ch, cw = coarse.shape
    out = []
    for di in range(-radius, radius + 1):
        for dj in range(-radius, radius + 1):
            s = _shift(coarse, di, dj)
            up = s[:, None, :, None].expand(ch, factor, cw, factor)
            out.append(up.reshape(factor * ch, factor * cw)[:h, :w])
    return out


def features(kind: str, level, parent, grand) -> torch.Tensor:
    h, w = level.shape
    i, j = torch.arange(h)[:, None], torch.arange(w)[None, :]
    ids = PASS_OF_PARITY[i % 2, j % 2]
    is_b, is_c, is_d = ((ids == p).to(level.dtype) for p in (1, 2, 3))
    base = kind.split("+")[0]
    if base == "o0":
        other = ((i + j) % 2).expand(h, w).to(level.dtype)
        columns = [_shift(level, *o) * other for o in CROSS] + [other]
    elif base == "o1":
        columns = [
            _shift(level, *c) * (is_c + is_d) + _shift(level, *d) * is_b
            for c, d in zip(CROSS, DIAGONAL, strict=True)
        ] + [is_b, is_c, is_d]
    elif base in ("o2", "o2far"):
        columns = []
        for di, dj in CROSS + DIAGONAL + (FAR if base == "o2far" else []):
            decoded = PASS_OF_PARITY[(i + di) % 2, (j + dj) % 2] < ids
            columns.append(_shift(level, di, dj) * decoded.to(level.dtype))
        columns += [is_b, is_c, is_d]
    elif base == "oracle":
        columns = [_shift(level, *o) for o in CROSS + DIAGONAL]
    else:
        raise SystemExit(f"unknown feature set {base}")
    if "+par" in kind:
        columns += [(i % 2).expand(h, w).to(level.dtype), (j % 2).expand(h, w).to(level.dtype)]
    columns += _coarser(level, parent, 2, 2 if "+p5" in kind else 1)
    if "+grand" in kind:
        columns += _coarser(level, grand, 4, 1)
    return torch.stack(columns, dim=-1)


def fit(levels: list[torch.Tensor], kind: str, hidden: int, layers: int, steps: int):
    """Bits of the latents under the best context model of this shape, and its weights."""
    torch.manual_seed(0)
    feats = [
        features(
            kind,
            level,
            levels[k + 1] if k + 1 < len(levels) else None,
            levels[k + 2] if k + 2 < len(levels) else None,
        )
        for k, level in enumerate(levels)
    ]
    dims = [feats[0].shape[-1]] + [hidden] * layers
    modules: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(dims):
        modules += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    last = torch.nn.Linear(hidden, 2)
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    net = torch.nn.Sequential(*modules, last)
    bias = torch.nn.Parameter(torch.zeros(len(levels), 2))
    with torch.no_grad():
        bias[:, 1] = latents.INITIAL_LOG2_SCALE
    coded = [k for k, level in enumerate(levels) if bool(level.any())]  # zero levels: flagged
    optimizer = torch.optim.Adam([*net.parameters(), bias], lr=0.01)
    total = torch.tensor(0.0)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = 0.01 * 0.5 * (1 + math.cos(math.pi * step / steps))
        total = torch.tensor(0.0)
        for k in coded:
            out = net(feats[k]) + bias[k]
            scale = torch.exp2(out[..., 1].clamp(latents.LOG2_SCALE_MIN, latents.LOG2_SCALE_MAX))
            total = total + latents.laplace_bits(levels[k], out[..., 0], scale).sum()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return float(total.detach()), sum(p.numel() for p in net.parameters()) + bias.numel()


def file_latents(args) -> tuple[list[np.ndarray], str]:
    if args.file:
        data = args.file.read_bytes()
        what = args.file.name
    else:
        config = EncodeConfig().with_options(bpp=args.bpp, model="grid", steps=args.steps)
        kind = adapters.ImageKind.load(KODAK / f"{args.image}.png")
        what = args.image
        if args.crop:
            height, width = map(int, args.crop.split("x"))
            image = kind.image
            top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
            crop = image[top : top + height, left : left + width]
            kind = adapters.ImageKind.load(np.ascontiguousarray(crop))
            what += f" {args.crop}"
        torch.manual_seed(0)
        encoded = grid_codec.encode(kind, config, kind.budget_bits(config), torch.device("cpu"))
        data = encoded.data
        what += f" ({8 * len(data)} bits, {args.steps} steps)"
    header, payload = decoder.read_file(data)
    model = grid_codec.load_models(header, payload, torch.device("cpu"))[0]
    return [y.detach()[0, 0].numpy().astype(np.int64) for y in model.latents], what


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="a grid .inr file (else --image is encoded)")
    parser.add_argument("--image", default="kodim15")
    parser.add_argument("--crop", help="HxW centre crop, e.g. 256x384")
    parser.add_argument("--bpp", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=400, help="training steps of the encode")
    parser.add_argument("--fit-steps", type=int, default=1500)
    parser.add_argument("--variants", default="o0,o1,o2")
    parser.add_argument("--bits-per-weight", type=float, default=3.6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.file is None and not KODAK.is_dir():
        raise SystemExit(f"no Kodak images in {KODAK}")
    torch.set_num_threads(args.threads)
    ints, what = file_latents(args)
    levels = [torch.from_numpy(level).float() for level in ints]
    nonzero = [int((level != 0).sum()) for level in ints]
    print(f"{what}: non-zero latents per level (finest first) {nonzero}")
    print("| variant | latent bits | weights | net bits vs first | load |")
    print("|---|---|---|---|---|")
    first = None
    for variant in args.variants.split(","):
        kind, *shape = variant.split(":")
        hidden, layers = (int(v) for v in [*shape, 16, 1][:2]) if shape else (16, 1)
        if len(shape) == 1:
            layers = 1
        bits, weights = fit(levels, kind, hidden, layers, args.fit_steps)
        net = bits + args.bits_per_weight * weights
        first = net if first is None else first
        print(
            f"| {variant} | {bits:.0f} | {weights} | {net - first:+.0f} | "
            f"{os.getloadavg()[0]:.1f} |",
            flush=True,
        )
    print(f"(net bits: latents + weights x {args.bits_per_weight})", file=sys.stderr)


if __name__ == "__main__":
    main()
