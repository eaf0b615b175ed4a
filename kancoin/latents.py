"""Entropy coding of integer latent grids with a context model that decodes bit-exactly.

Every latent is coded as a residual against a predicted mean, under a Laplace distribution
whose probabilities come from a committed integer table (kancoin/data/grid_laplace.u16,
written once by scripts/make_grid_table.py): the coder never sees a float computed on the
decoding machine, so a file decodes identically on any CPU, thread count or torch build.

The table row of a latent is chosen by a tiny context network run in fixed point (int64):
its inputs are integers (already decoded latents), its weights integers at scale 2^-8, and
its two outputs are rounded to a mean in quarters and a scale index. Order of decoding
(docs/GRID.md): coarsest level first; within a level, first the "anchors" (i + j even),
whose context is the coarser level only, then the other half, which also sees its four
decoded anchor neighbours. Each pass is one vectorised step, never a loop per latent.
That is the checkerboard layout (model id 4). The raster layout (model id 22) gives each
latent its 8 causal neighbours instead (no coarser level) and decodes a level in wavefronts
t = 2i + j, one batch each (docs/FORMAT.md, docs/GRID.md).
A context network without hidden units is the factorized model: one learned mean and scale
per level.

`ContextNet` is the float twin used in training (the same arithmetic in float, Laplace
bits as the rate term); the writer and reader only use the integer path.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import constriction
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kancoin.errors import FormatError

LATENT_MAX = 31  # latents are integers in [-LATENT_MAX, LATENT_MAX]
RESIDUAL_MAX = 2 * LATENT_MAX  # residual against an integer mean in the same range
SYMBOLS = 2 * RESIDUAL_MAX + 1
SCALES = 48  # Laplace scale b_k = 2^(k / 6 - 3.5), k = 0..47: 0.088 .. 20.2
SCALE_STEPS_PER_OCTAVE = 6
SCALE_OFFSET = 21  # k = 6 log2(b) + 21
FRACTIONS = 4  # mean offsets (f - 2) / 4 for f = 0..3, i.e. the mean in quarters
TABLE_TOTAL = 1 << 16  # frequencies of a row sum to this; each is at least 1
TABLE_PATH = Path(__file__).parent / "data" / "grid_laplace.u16"
FIXED_BITS = 8  # context weights and activations are integers at scale 2^-FIXED_BITS
CONTEXT_STEP_INDEX = -16 * FIXED_BITS  # the same step in kancoin.quant's table
CONTEXT_MAX_INT = 1 << 15  # |context weight| bound: every int64 sum stays below 2^45
# level_bias[l, 1] == ZERO_LEVEL flags level l as all zero: it is not coded (no bits). Just
# outside the weight bound, so no file written before it existed holds it (docs/FORMAT.md)
ZERO_LEVEL = -(CONTEXT_MAX_INT + 1)
FEATURES = 14  # 4 neighbours, the non-anchor flag, the coarser level's 3x3 around the parent
LOG2_SCALE_MIN = -SCALE_OFFSET / SCALE_STEPS_PER_OCTAVE
LOG2_SCALE_MAX = (SCALES - 1 - SCALE_OFFSET) / SCALE_STEPS_PER_OCTAVE
MIN_PROBABILITY = 1.0 / TABLE_TOTAL
INITIAL_LOG2_SCALE = -2.0  # latents start at zero: cheap until they grow (measured, GRID.md)


def scale_of(k: int) -> float:
    return float(2.0 ** ((k - SCALE_OFFSET) / SCALE_STEPS_PER_OCTAVE))


_TABLE_DIGEST = "5898fa99e5442bdc"  # first 16 hex digits of the table file's sha256


@cache
def table() -> np.ndarray:
    """(SCALES * FRACTIONS, SYMBOLS) float64 probabilities, exact multiples of 2^-16."""
    data = TABLE_PATH.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    if digest != _TABLE_DIGEST or len(data) != 2 * SCALES * FRACTIONS * SYMBOLS:
        raise RuntimeError(f"{TABLE_PATH} is not the table this kancoin was built with")
    freq = np.frombuffer(data, dtype="<u2").astype(np.int64)
    return freq.reshape(SCALES * FRACTIONS, SYMBOLS).astype(np.float64) / TABLE_TOTAL


def checkerboard_planes(level: torch.Tensor, parent: torch.Tensor | None) -> list[torch.Tensor]:
    """The FEATURES (h, w) planes of every latent's context (float or int64 alike;
    `CHECKERBOARD.feature_map` stacks them).

    Anchors (i + j even) see only the coarser level: their neighbour features are zero,
    so the same function serves the encoder (which knows the whole level) and the decoder
    (which knows only the anchors when it decodes the others).
    """
    h, w = level.shape
    padded = F.pad(level[None, None], (1, 1, 1, 1))[0, 0]
    other = _non_anchors(h, w, level.device).to(level.dtype)
    neighbours = [
        padded[0:h, 1 : w + 1],
        padded[2 : h + 2, 1 : w + 1],
        padded[1 : h + 1, 0:w],
        padded[1 : h + 1, 2 : w + 2],
    ]
    columns = [n * other for n in neighbours] + [other]
    if parent is None:
        columns += [torch.zeros_like(level)] * 9
    else:
        pp = F.pad(parent[None, None], (1, 1, 1, 1))[0, 0]
        ph, pw = parent.shape
        for di in range(3):
            for dj in range(3):
                shifted = pp[di : di + ph, dj : dj + pw]  # parent[y + di - 1, x + dj - 1]
                # nearest x2 upsampling as a broadcast: any dtype, and a cheap backward
                twice = shifted[:, None, :, None].expand(ph, 2, pw, 2).reshape(2 * ph, 2 * pw)
                columns.append(twice[:h, :w])
    return columns


@cache
def _non_anchor_cached(h: int, w: int) -> torch.Tensor:
    i = torch.arange(h)[:, None]
    j = torch.arange(w)[None, :]
    return (i + j) % 2 == 1


def _non_anchors(h: int, w: int, device: torch.device) -> torch.Tensor:
    return _non_anchor_cached(h, w).to(device)


RASTER_OFFSETS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-3, 0), (0, -3))


def raster_planes(level: torch.Tensor, parent: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The 8 (h, w) planes of every latent's causal context (float or int64 alike;
    `RASTER.feature_map` stacks them): its
    neighbours at RASTER_OFFSETS (Cool-chic's eight nearest in its priority order), 0
    outside the grid. All of them come before the latent in wavefront order (t = 2i + j),
    so a decoder has them; the coarser level is not used (`parent` is ignored)."""
    h, w = level.shape
    padded = F.pad(level[None, None], (3, 3, 3, 0))[0, 0]
    return [padded[3 + dy : 3 + dy + h, 3 + dx : 3 + dx + w] for dy, dx in RASTER_OFFSETS]


@cache
def _raster_index(h: int, w: int) -> np.ndarray:
    """(h * w, 8) flat index of each latent's raster neighbours in a level's buffer of
    h * w + 1 values whose last one is 0 (the neighbours outside the grid)."""
    i = np.arange(h)[:, None, None]
    j = np.arange(w)[None, :, None]
    dy = np.array([o[0] for o in RASTER_OFFSETS])
    dx = np.array([o[1] for o in RASTER_OFFSETS])
    y, x = i + dy, j + dx
    inside = (y >= 0) & (x >= 0) & (x < w)
    return np.where(inside, y * w + x, h * w).reshape(h * w, len(RASTER_OFFSETS))


@cache
def _wavefronts(h: int, w: int) -> list[np.ndarray]:
    """Latents of a level grouped by wavefront t = 2i + j, in increasing t (i ascending
    inside one): every raster neighbour of a latent lies in an earlier wavefront."""
    t = (2 * np.arange(h)[:, None] + np.arange(w)[None, :]).reshape(-1)
    order = np.argsort(t, kind="stable")
    bounds = np.flatnonzero(np.diff(t[order])) + 1
    return np.split(order, bounds)


@dataclass(frozen=True)
class Layout:
    """Which decoded latents a latent's context sees (and so the decoding order)."""

    name: str
    features: int  # context inputs per latent
    planes: Callable[[torch.Tensor, torch.Tensor | None], list[torch.Tensor]]

    def feature_map(self, level: torch.Tensor, parent: torch.Tensor | None) -> torch.Tensor:
        """(h, w, features): each latent's context inputs in its last dimension."""
        return torch.stack(self.planes(level, parent), dim=-1)


CHECKERBOARD = Layout("checkerboard", FEATURES, checkerboard_planes)
RASTER = Layout("raster", len(RASTER_OFFSETS), raster_planes)
LAYOUTS = {layout.name: layout for layout in (CHECKERBOARD, RASTER)}


class ContextNet(nn.Module):
    """Float twin of the integer context model: per level a mean and log2 scale.

    out = level_bias[l] + w2 relu(w1 x + b1) + b2, without the hidden part when hidden = 0.
    """

    def __init__(self, levels: int, hidden: int, layout: Layout = CHECKERBOARD):
        super().__init__()
        self.levels, self.hidden, self.layout = levels, hidden, layout
        inputs = layout.features
        self.level_bias = nn.Parameter(torch.zeros(levels, 2))
        with torch.no_grad():
            self.level_bias[:, 1] = INITIAL_LOG2_SCALE
        if hidden:
            self.w1 = nn.Parameter(torch.randn(hidden, inputs) * (0.5 / math.sqrt(inputs)))
            self.b1 = nn.Parameter(torch.zeros(hidden))
            self.w2 = nn.Parameter(torch.zeros(2, hidden))
            self.b2 = nn.Parameter(torch.zeros(2))

    def coded_tensors(self) -> list[torch.Tensor]:
        if not self.hidden:
            return [self.level_bias]
        return [self.level_bias, self.w1, self.b1, self.w2, self.b2]

    def params(self, feats: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log2 scale) for (..., FEATURES) float features of level `index`."""
        shape = feats.shape[:-1]
        if self.hidden:
            flat = feats.reshape(-1, feats.shape[-1])  # 2-D matmuls: a batched one is far slower
            h = torch.addmm(self.b1, flat, self.w1.t()).relu_()
            out = torch.addmm(self.b2 + self.level_bias[index], h, self.w2.t()).reshape(*shape, 2)
        else:
            out = self.level_bias[index].expand(*shape, 2)
        return out[..., 0], out[..., 1].clamp(LOG2_SCALE_MIN, LOG2_SCALE_MAX)

    def bits(self, levels: list[torch.Tensor], start: int = 0) -> list[torch.Tensor]:
        """Differentiable code length of each level (finest first) from `start` on, from
        the float model."""
        out = []
        for index, level in enumerate(levels):
            if index < start:
                continue
            parent = levels[index + 1] if index + 1 < len(levels) else None
            mean, log2_scale = self.params(self.layout.feature_map(level, parent), index)
            out.append(laplace_bits(level, mean, torch.exp2(log2_scale)).sum())
        return out


def laplace_bits(values: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log2 of the Laplace mass on [v - 1/2, v + 1/2], floored like the integer table."""
    z = values - mean
    upper, lower = _cdf(z + 0.5, scale), _cdf(z - 0.5, scale)
    return -torch.log2((upper - lower).clamp_min(MIN_PROBABILITY))


def _cdf(z: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return 0.5 + 0.5 * torch.sign(z) * (1.0 - torch.exp(-z.abs() / scale))


# integer path: the only one the writer and the reader use


def int_params(weights: list[np.ndarray], feats: torch.Tensor, index: int) -> torch.Tensor:
    """Table row of each latent, from int64 features, in exact integer arithmetic.

    weights: the context tensors as integers at scale 2^-FIXED_BITS (level_bias, then
    w1, b1, w2, b2 when there is a hidden layer). Returns int64 (..., 2): the integer
    mean m in [-LATENT_MAX, LATENT_MAX] and the row index k * FRACTIONS + f.
    """
    return torch.from_numpy(_LevelContext(weights, index).params(feats.numpy()))


def _int_outputs(weights: list[np.ndarray], feats: torch.Tensor, index: int) -> torch.Tensor:
    """The network's (mean, log2 scale) at scale 2^FIXED_BITS, int64 (..., 2)."""
    return torch.from_numpy(_LevelContext(weights, index).outputs(feats.numpy()))


class _LevelContext:
    """The integer context network of one level, its weights converted once (the raster
    coder runs it on thousands of small wavefronts); numpy, on (..., F) int64 features.

    The products run in float64, on BLAS: every operand is an integer and every partial sum
    stays below 2^45 (CONTEXT_MAX_INT), where float64 is exact in any order of summation,
    so this is the int64 result bit for bit, 10x faster than int64 matmul."""

    def __init__(self, weights: list[np.ndarray], index: int):
        self.bias = weights[0].astype(np.int64).reshape(-1, 2)[index]
        self.layers = None
        if len(weights) > 1:
            hidden = weights[2].size
            self.layers = (
                weights[1].astype(np.float64).reshape(hidden, -1).T.copy(),
                weights[2].astype(np.float64).reshape(-1),
                weights[3].astype(np.float64).reshape(2, hidden).T.copy(),
                weights[4].astype(np.int64).reshape(-1),
            )

    def outputs(self, feats: np.ndarray) -> np.ndarray:
        """(mean, log2 scale) at scale 2^FIXED_BITS, int64 (..., 2)."""
        out = np.broadcast_to(self.bias, (*feats.shape[:-1], 2))
        if self.layers is not None:
            w1t, b1, w2t, b2 = self.layers
            acc = np.maximum(feats.astype(np.float64) @ w1t + b1, 0.0) @ w2t  # scale 2^2F
            out = out + (acc.astype(np.int64) >> FIXED_BITS) + b2
        return np.ascontiguousarray(out)  # (a broadcast view without a hidden layer)

    def params(self, feats: np.ndarray) -> np.ndarray:
        """int64 (..., 2): the integer mean and the table row."""
        return _rows(self.outputs(feats))


def _rows(out: np.ndarray) -> np.ndarray:
    mean4 = (out[..., 0] + (1 << (FIXED_BITS - 3))) >> (FIXED_BITS - 2)
    mean4 = np.clip(mean4, -4 * LATENT_MAX, 4 * LATENT_MAX)
    k = (SCALE_STEPS_PER_OCTAVE * out[..., 1] + (SCALE_OFFSET << FIXED_BITS)) >> (FIXED_BITS - 1)
    k = np.clip((k + 1) >> 1, 0, SCALES - 1)
    mean = (mean4 + FRACTIONS // 2) >> 2
    fraction = mean4 - FRACTIONS * mean + FRACTIONS // 2
    return np.stack([mean, k * FRACTIONS + fraction], axis=-1)


def refit_level_bias(
    levels: list[np.ndarray], weights: list[np.ndarray], layout: Layout = CHECKERBOARD
) -> list[np.ndarray]:
    """The context weights with each level's bias moved to where the integer model codes
    these latents in the fewest bits (a search over mean and scale offsets).

    Training fits a float twin to noisy latents; this fits the integers actually written.
    """
    probs = np.log2(table())
    bias = weights[0].astype(np.int64).reshape(-1, 2).copy()
    tensors = [torch.from_numpy(level.astype(np.int64)) for level in levels]
    quarter = 1 << (FIXED_BITS - 2)
    scale_step = round((1 << FIXED_BITS) / SCALE_STEPS_PER_OCTAVE)
    # (the last scale offset pins every row to the smallest scale: a level of zeros)
    offsets = np.array(
        [
            (dm * quarter, ds * scale_step)
            for dm in range(-2, 3)
            for ds in [*range(-6, 7), -SCALES * (1 << FIXED_BITS) // SCALE_STEPS_PER_OCTAVE]
        ]
    )
    for index, level in enumerate(tensors):
        if not bool(level.any()):  # a level of zeros costs nothing under the flag
            bias[index, 1] = ZERO_LEVEL
            continue
        parent = tensors[index + 1] if index + 1 < len(tensors) else None
        feats = layout.feature_map(level, parent).numpy()
        out = _LevelContext(weights, index).outputs(feats).reshape(-1, 2)
        values = level.reshape(-1).numpy()
        best, best_bits = None, math.inf
        for offset in offsets:
            rows = _rows(out + offset)
            symbols = values - rows[:, 0] + RESIDUAL_MAX
            bits = -float(probs[rows[:, 1], symbols].sum())
            if bits < best_bits:
                best, best_bits = offset, bits
        bias[index] = np.clip(bias[index] + best, -CONTEXT_MAX_INT, CONTEXT_MAX_INT)
    return [bias.reshape(weights[0].shape), *weights[1:]]


def check_context_ints(weights: list[np.ndarray]) -> None:
    for i, w in enumerate(weights):
        w = w.astype(np.int64)
        if i == 0 and w.size % 2 == 0:  # the level bias: its scale column may hold the flag
            w = w.reshape(-1, 2).copy()
            w[w[:, 1] == ZERO_LEVEL, 1] = 0
        if w.size and int(np.max(np.abs(w))) > CONTEXT_MAX_INT:
            raise FormatError("context model weight outside the fixed-point range")


def zero_levels(weights: list[np.ndarray]) -> list[bool]:
    """Per level (finest first): flagged all zero, hence not coded."""
    return [bool(v == ZERO_LEVEL) for v in weights[0].astype(np.int64).reshape(-1, 2)[:, 1]]


def _passes(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    other = _non_anchor_cached(h, w).reshape(-1)
    return torch.nonzero(~other).reshape(-1), torch.nonzero(other).reshape(-1)


def _groups(rows: np.ndarray):
    """Symbols grouped by table row, rows ascending, raster order inside a group."""
    if rows.size == 0:
        return
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    ends = np.r_[starts[1:], rows.size]
    for start, end in zip(starts, ends, strict=True):
        yield int(sorted_rows[start]), order[start:end]


def _levels_to_code(levels: list[torch.Tensor], weights: list[np.ndarray]) -> list[int]:
    """Indices of the levels an encoder codes, coarsest first (flagged levels skipped, after
    checking they are zero); ValueError for a latent outside the coder's range."""
    zero = zero_levels(weights)
    coded = []
    for index in reversed(range(len(levels))):
        if levels[index].abs().max() > LATENT_MAX:
            raise ValueError("latent outside the coder's range")
        if not zero[index]:
            coded.append(index)
        elif levels[index].any():
            raise ValueError("a level flagged all zero holds a non-zero latent")
    return coded


def encode(
    levels: list[np.ndarray], weights: list[np.ndarray], layout: Layout = CHECKERBOARD
) -> tuple[bytes, list[float]]:
    """Range-code integer latent levels (finest first); returns words and ideal bits per level."""
    check_context_ints(weights)
    encoder = constriction.stream.queue.RangeEncoder()
    tensors = [torch.from_numpy(level.astype(np.int64)) for level in levels]
    bits = [0.0] * len(levels)
    code_level = _encode_raster_level if layout is RASTER else _encode_checkerboard_level
    for index in _levels_to_code(tensors, weights):
        parent = tensors[index + 1] if index + 1 < len(levels) else None
        bits[index] = code_level(encoder, tensors[index], parent, weights, index)
    words = np.asarray(encoder.get_compressed(), dtype="<u4").tobytes()
    return words, bits


def _encode_checkerboard_level(encoder, level, parent, weights, index: int) -> float:
    """Two passes (anchors, the rest), symbols grouped by table row; returns ideal bits."""
    probs = table()
    feats = CHECKERBOARD.feature_map(level, parent)
    params = int_params(weights, feats, index).reshape(-1, 2).numpy()
    flat = level.reshape(-1).numpy()
    bits = 0.0
    for positions in _passes(*level.shape):
        pos = positions.numpy()
        symbols = flat[pos] - params[pos, 0] + RESIDUAL_MAX
        for row, members in _groups(params[pos, 1]):
            group = symbols[members].astype(np.int32)
            encoder.encode(group, constriction.stream.model.Categorical(probs[row], False))
            bits -= float(np.log2(probs[row][group]).sum())
    return bits


def decode(
    payload: bytes,
    shapes: list[tuple[int, int]],
    weights: list[np.ndarray],
    layout: Layout = CHECKERBOARD,
) -> tuple[list[np.ndarray], list[float]]:
    """Inverse of `encode`: the levels (finest first) and their ideal bits."""
    check_context_ints(weights)
    if len(payload) % 4:
        raise FormatError("latent payload is not a whole number of 32-bit words")
    probs = table()
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    decoder = constriction.stream.queue.RangeDecoder(words)
    levels: list[torch.Tensor | None] = [None] * len(shapes)
    bits = [0.0] * len(shapes)
    zero = zero_levels(weights)
    if len(zero) != len(shapes):
        raise FormatError("grid context model does not match the levels")
    if layout is RASTER:
        return _decode_raster(decoder, shapes, weights, zero)
    try:
        for index in reversed(range(len(shapes))):
            h, w = shapes[index]
            flat = np.zeros(h * w, dtype=np.int64)
            parent = levels[index + 1] if index + 1 < len(shapes) else None
            for positions in _passes(h, w) if not zero[index] else ():
                level = torch.from_numpy(flat.reshape(h, w))
                feats = CHECKERBOARD.feature_map(level, parent).reshape(-1, FEATURES)[positions]
                params = int_params(weights, feats, index).numpy()  # this pass's latents only
                pos = positions.numpy()
                for row, members in _groups(params[:, 1]):
                    model = constriction.stream.model.Categorical(probs[row], False)
                    group = np.asarray(decoder.decode(model, members.size), dtype=np.int64)
                    bits[index] -= float(np.log2(probs[row][group]).sum())
                    flat[pos[members]] = group - RESIDUAL_MAX + params[members, 0]
            if np.abs(flat).max(initial=0) > LATENT_MAX:
                raise FormatError("latent payload is corrupt (latent out of range)")
            levels[index] = torch.from_numpy(flat.reshape(h, w))
    except (ValueError, RuntimeError, KeyError, OverflowError, AssertionError) as exc:
        raise FormatError(f"latent payload is corrupt ({exc})") from None
    return [level.numpy() for level in levels], bits


# the raster layout: every latent sees its 8 causal neighbours; coded per wavefront, each
# latent under its own table row (constriction's categorical family, one row per symbol)

_FAMILY = constriction.stream.model.Categorical(perfect=False)
ENCODE_CHUNK = 8192  # symbols per call to the coder


def _encode_raster_level(encoder, level, parent, weights, index: int) -> float:
    """In wavefront order, each symbol under its own row; returns ideal bits."""
    probs = table()
    feats = RASTER.feature_map(level, None).reshape(-1, len(RASTER_OFFSETS)).numpy()
    params = _LevelContext(weights, index).params(feats)
    order = np.concatenate(_wavefronts(*level.shape))
    symbols = (level.reshape(-1).numpy() - params[:, 0] + RESIDUAL_MAX)[order]
    rows = params[order, 1]
    for start in range(0, symbols.size, ENCODE_CHUNK):
        chunk = slice(start, start + ENCODE_CHUNK)
        encoder.encode(symbols[chunk].astype(np.int32), _FAMILY, probs[rows[chunk]])
    return -float(np.log2(probs[rows, symbols]).sum())


def _decode_raster(
    decoder, shapes: list[tuple[int, int]], weights: list[np.ndarray], zero: list[bool]
) -> tuple[list[np.ndarray], list[float]]:
    """One batch per wavefront: gather the decoded neighbours, run the integer network,
    decode the wavefront's symbols under their rows."""
    probs = table()
    levels: list[np.ndarray | None] = [None] * len(shapes)
    bits = [0.0] * len(shapes)
    try:
        for index in reversed(range(len(shapes))):
            h, w = shapes[index]
            buffer = np.zeros(h * w + 1, dtype=np.int64)  # the last value: outside the grid
            neighbours = _raster_index(h, w)
            context = _LevelContext(weights, index)
            coded = []  # (row, symbol) of each wavefront, for the ideal bits
            for positions in _wavefronts(h, w) if not zero[index] else ():
                params = context.params(buffer[neighbours[positions]])
                symbols = np.asarray(decoder.decode(_FAMILY, probs[params[:, 1]]), dtype=np.int64)
                buffer[positions] = symbols - RESIDUAL_MAX + params[:, 0]
                coded.append((params[:, 1], symbols))
            if coded:  # summed as the encoder sums them: the same float, bit for bit
                rows, symbols = (np.concatenate(c) for c in zip(*coded, strict=True))
                bits[index] = -float(np.log2(probs[rows, symbols]).sum())
            if np.abs(buffer).max(initial=0) > LATENT_MAX:
                raise FormatError("latent payload is corrupt (latent out of range)")
            levels[index] = buffer[:-1].reshape(h, w)
    except (ValueError, RuntimeError, KeyError, OverflowError, AssertionError) as exc:
        raise FormatError(f"latent payload is corrupt ({exc})") from None
    return levels, bits
