"""Fuzz campaign against the decoder: hostile .inr files must end in one clear error.

    .venv/bin/python bench/fuzz.py --inputs 1000000 --out fuzz-out
    .venv/bin/python bench/fuzz.py --seconds 60          # the short run CI makes

Inputs are decoded in-process by one worker subprocess (torch on one thread) that the
parent watches: an input running longer than --timeout seconds is a hang (the worker is
killed, the input saved, a new worker carries on); the worker's address space is capped at
its size after start-up plus --memory-cap MiB, so an input asking for more fails as
over-memory. Each input comes from one mode, mixed in fixed shares:

- raw: 1-4 byte-level mutations of a seed file (flips, boundary bytes, inserts, deletes,
  truncations, splices); the CRC is left alone, so anything accepted is corrupt accepted.
- crc: the same mutations with the CRC recomputed, so they reach the parser and decoder.
- struct: the header parsed into its fields (a mirror of docs/FORMAT.md that does not check
  ranges), a few fields, tensor entries, padding, header length or payload words changed,
  re-serialised consistently (or not), payload mutated or regrown, CRC recomputed.
- fields: one header field at a time set to each of its boundary values (low, high, one
  past each, zero, the type's extremes; NaN and infinities for floats), CRC recomputed.
- sizes: valid files of hostile sizes: random models up to the parameter cap, images up to
  65535 a side, audio up to 2^32 - 1 frames and 65535 segments, real range-coded payloads.

Every accepted file must be canonical (re-serialising its header and payload gives the same
bytes). A decode runs under the decode budget given by --max-work / --max-memory-mib (small,
so each input stays fast; the point is that the budget's estimate is checked before any
cost). Some inputs are also written, to a random output format. The seed corpus is encoded
by the script itself (tiny images and clips, a few steps) into OUT/corpus; reproducers of
any failure go to OUT/crashes with their traceback. With atheris installed, `--atheris N`
adds N coverage-guided inputs (optional; skipped with a note when absent).

Outcomes are printed as counts, with the rate in inputs per second (label it with
/proc/loadavg: the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path

MODES = ("raw", "crc", "struct", "fields", "sizes")
SHARES = {"raw": 0.30, "crc": 0.27, "struct": 0.28, "fields": 0.10, "sizes": 0.05}
IMAGE_SUFFIXES = (".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm")
AUDIO_SUFFIXES = (".wav", ".flac")
REPORT_SECONDS = 0.5  # how often the worker sends its counts
STARTING = -(1 << 62)  # the worker's input index before it has imported everything


# --- seed corpus ---------------------------------------------------------------------------


def make_corpus(directory: Path) -> list[bytes]:
    """Tiny encoded files of every model and signal kind (cached in `directory`)."""
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(directory.glob("*.inr"))
    if existing:
        return [path.read_bytes() for path in existing]
    import numpy as np

    import kancoin

    rng = np.random.default_rng(0)

    def image(h, w, c):
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        planes = [0.5 + 0.4 * np.sin((k + 1) * 3 * y / h + 2 * x / w + k) for k in range(c)]
        return np.stack(planes, axis=-1).astype(np.float32)

    fast = {"preset": "fast", "steps": 3, "bpp": None, "bits": 8, "threads": 1}
    seeds = {
        "siren-rgb": kancoin.encode(image(6, 8, 3), layers=1, width=4, **fast),
        "siren-grey": kancoin.encode(image(5, 7, 1), layers=2, width=3, **fast),
        "siren-rgba": kancoin.encode(image(4, 4, 4), layers=1, width=2, **fast),
        "kan-rgb": kancoin.encode(image(6, 6, 3), model="kan", layers=1, width=2, **fast),
        "fourier-rgb": kancoin.encode(image(6, 6, 3), model="fourier", layers=1, width=3, **fast),
        "gauss-rgb": kancoin.encode(image(5, 6, 3), model="gauss", layers=1, width=3, **fast),
        "siren-rate": kancoin.encode(image(12, 12, 3), preset="fast", steps=3, bpp=12.0, threads=1),
    }
    clip = (0.5 * np.sin(np.arange(160) / 5.0)).astype(np.float32)
    audio = {"preset": "fast", "steps": 3, "kbps": None, "bits": 8, "threads": 1}
    seeds["audio-mono"] = kancoin.encode(
        clip, sample_rate=8000, layers=1, width=3, segment_seconds=0.01, **audio
    )
    stereo = np.stack([clip, clip[::-1]], axis=1)
    seeds["audio-stereo"] = kancoin.encode(
        stereo, sample_rate=16000, layers=1, width=2, segment_seconds=0.004, **audio
    )
    data = {name: result.data for name, result in seeds.items()}
    data["siren-2ch"] = synth_file(
        rng_py(1), kind="image", model="siren", channels=2, small=True, seed_rng=rng
    )
    for name, blob in data.items():
        (directory / f"{name}.inr").write_bytes(blob)
    return [data[name] for name in sorted(data)]


def rng_py(seed: int) -> random.Random:
    return random.Random(seed)


# --- a mirror of the header layout (docs/FORMAT.md) that checks nothing ----------------------


def _layout_tables():
    from kancoin.bitstream import SIGNAL_INFOS, TENSOR_FIELDS
    from kancoin.models import MODEL_SPECS

    signal = {
        kind: [(f.name, f.fmt, f.low, f.high) for f in cls.header_fields]
        for kind, cls in SIGNAL_INFOS.items()
    }
    model = {
        mid: [(f.name, f.fmt, f.low, f.high) for f in cls.header_fields]
        for mid, cls in MODEL_SPECS.items()
    }
    return signal, model, list(TENSOR_FIELDS)


def parse_fields(data: bytes):
    """(fields, payload) where fields is a list of [name, fmt, value, low, high]; None
    when the file is not laid out well enough to split."""
    import bitstring

    signal_tables, model_tables, tensor_fields = _layout_tables()
    try:
        body = data[:-4]
        bits = bitstring.Bits(body)
        reader = bitstring.Reader(bits, pos=0)
        fields = [["magic", "bytes:4", reader.read_value("bytes:4"), None, None]]
        for name, fmt in (("version", "uint:8"), ("kind", "uint:8"), ("header_length", "uint:16")):
            fields.append([name, fmt, reader.read_value(fmt), None, None])
        kind = fields[2][2]
        length = fields[3][2]
        for name, fmt, low, high in signal_tables[kind]:
            fields.append([name, fmt, reader.read_value(fmt), low, high])
        model_id = reader.read_value("uint:8")
        fields.append(["model_id", "uint:8", model_id, None, None])
        for name, fmt, low, high in model_tables[model_id]:
            fields.append([name, fmt, reader.read_value(fmt), low, high])
        networks = reader.read_value("uint:16")
        fields.append(["networks", "uint:16", networks, 1, 65535])
        from kancoin.bitstream import read

        header, _payload = read(data)
        for index in range(len(header.tensors)):
            for name, fmt, low, high in tensor_fields:
                fields.append([f"t{index}.{name}", fmt, reader.read_value(fmt), low, high])
        has_psnr = reader.read_value("uint:1")
        fields.append(["has_psnr", "uint:1", has_psnr, 0, 1])
        if has_psnr:
            fields.append(["psnr", "uint:16", reader.read_value("uint:16"), 0, 65535])
        fields.append(["payload_words", "uint:32", reader.read_value("uint:32"), None, None])
        return fields, bytes(body[length:])
    except Exception:
        return None


def pack_fields(fields, payload: bytes, *, fix_length=True, fix_words=True, pad=0) -> bytes:
    """Header bits (header_length and payload_words made consistent unless told not to),
    `pad` in the padding bits, the payload and a CRC."""
    import bitstring

    values = {f[0]: f for f in fields}
    if fix_words:
        values["payload_words"][2] = len(payload) // 4
    stream = bitstring.BitArray()
    for _name, fmt, value, _, _ in fields:
        stream.append(bitstring.pack(fmt, _representable(fmt, value)))
    spare = -len(stream) % 8
    if spare:
        stream.append(bitstring.pack(f"uint:{spare}", pad % (1 << spare)))
    if fix_length:
        stream.overwrite(48, bitstring.pack("uint:16", len(stream) // 8))
    return with_crc(stream.tobytes() + payload)


def _representable(fmt: str, value):
    kind, _, size = fmt.partition(":")
    if kind == "bytes":
        return value
    bits = int(size)
    if kind == "uint":
        return int(value) % (1 << bits)
    if kind == "int":
        return (int(value) + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
    return float(value)


def with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def boundary_values(fmt: str, low, high) -> list:
    kind, _, size = fmt.partition(":")
    if kind == "bytes":
        return [b"KINR", b"KINS", b"\0\0\0\0"]
    if kind.startswith("float"):
        out = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e-45, 3.4e38, -1.0]
        if low is not None:
            out += [low, high, low * 0.999, high * 1.001, (low + high) / 2]
        return out
    bits = int(size)
    lo_type, hi_type = (
        (0, (1 << bits) - 1) if kind == "uint" else (-(1 << bits - 1), (1 << bits - 1) - 1)
    )
    out = {lo_type, hi_type, 0, 1, hi_type - 1}
    if low is not None:
        out |= {int(low), int(high), int(low) - 1, int(high) + 1, (int(low) + int(high)) // 2}
    return sorted(v for v in out if lo_type <= v <= hi_type)


# --- generators ------------------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
        op = rng.randrange(8)
        pos = rng.randrange(max(1, len(out)))
        if op <= 2 and out:
            out[pos % len(out)] ^= 1 << rng.randrange(8)
        elif op == 3 and out:
            out[pos % len(out)] = rng.choice((0, 0xFF, 0x7F, 0x80, 1, 0xFE))
        elif op == 4:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 4, 8))))
        elif op == 5 and out:
            del out[pos : pos + rng.choice((1, 4, 8))]
        elif op == 6:
            del out[rng.randrange(len(out) + 1) :]
        else:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            out = out[:pos] + other[cut:]
    return bytes(out)


def gen_raw(rng, corpus):
    seed = rng.choice(corpus)
    return mutate_bytes(seed, rng, corpus), seed


def gen_crc(rng, corpus):
    seed = rng.choice(corpus)
    mutated = mutate_bytes(seed, rng, corpus)
    if len(mutated) >= 4 and rng.random() < 0.5:  # CRC over all but the last 4 bytes
        return with_crc(mutated[:-4]), seed
    return with_crc(mutated), seed


def gen_struct(rng, corpus):
    seed = rng.choice(corpus)
    parsed = parse_fields(seed)
    if parsed is None:
        return seed, seed
    fields, payload = parsed
    payload = bytearray(payload)
    fix_length, fix_words, pad = True, True, 0
    for _ in range(rng.choice((1, 1, 2, 3))):
        op = rng.randrange(10)
        if op <= 3:
            field = rng.choice(fields[1:])
            if rng.random() < 0.6:
                field[2] = rng.choice(boundary_values(field[1], field[3], field[4]))
            elif field[1].startswith(("uint", "int")):
                field[2] = _representable(field[1], field[2] + rng.choice((-2, -1, 1, 2)))
            else:
                field[2] = field[2] * rng.choice((0.5, 2.0, -1.0))
        elif op == 4:
            fix_length = False
            fields[3][2] = fields[3][2] + rng.choice((-2, -1, 1, 2, 4))
        elif op == 5:
            pad = rng.randrange(1, 256)
        elif op == 6:
            fix_words = rng.random() < 0.5
            payload += struct.pack("<I", rng.choice((0, 1, 0xFFFFFFFF, rng.getrandbits(32))))
        elif op == 7 and payload:
            del payload[-4:]
        elif op == 8 and payload:
            pos = rng.randrange(len(payload))
            payload[pos] ^= 1 << rng.randrange(8)
        else:
            index = rng.randrange(len(payload) // 4 + 1) * 4
            payload[index:index] = struct.pack("<I", rng.getrandbits(32))
    return pack_fields(
        fields, bytes(payload), fix_length=fix_length, fix_words=fix_words, pad=pad
    ), seed


def gen_fields(rng, corpus, index: int):
    """Systematic: seed, field and boundary value enumerated from the input index."""
    seed = corpus[index % len(corpus)]
    parsed = parse_fields(seed)
    if parsed is None:
        return seed, seed
    fields, payload = parsed
    candidates = [(f, v) for f in fields[1:] for v in boundary_values(f[1], f[3], f[4])]
    field, value = candidates[(index // len(corpus)) % len(candidates)]
    field[2] = value
    if rng.random() < 0.25:  # and a second one at random
        other = rng.choice(fields[1:])
        other[2] = rng.choice(boundary_values(other[1], other[3], other[4]))
    return pack_fields(fields, payload), seed


def synth_file(rng, *, kind=None, model=None, channels=None, small=False, seed_rng=None) -> bytes:
    """A valid file (range-coded random integers) with hostile sizes unless `small`."""
    import numpy as np

    from kancoin import bitstream, entropy
    from kancoin.audio import AudioInfo
    from kancoin.bitstream import Header, TensorCoding
    from kancoin.entropy import EntropyParams, Family
    from kancoin.models import FourierSpec, GaussSpec, KanSpec, SirenSpec
    from kancoin.signals import ImageInfo

    nrng = seed_rng or np.random.default_rng(rng.getrandbits(32))
    kind = kind or rng.choice(("image", "image", "audio"))
    model = model or rng.choice(("siren", "kan", "fourier", "gauss"))

    def big(low, high):  # log-uniform
        return round(math.exp(rng.uniform(math.log(low), math.log(high))))

    if kind == "image":
        channels = channels or rng.choice((1, 2, 3, 4))
        side = (lambda: rng.randint(1, 8)) if small else (lambda: min(65535, big(1, 65535)))
        info = ImageInfo(height=side(), width=side(), channels=channels)
        in_features = 2
    else:
        channels = channels or rng.randint(1, 8)
        frames = rng.randint(1, 200) if small else min((1 << 32) - 1, big(1, (1 << 32) - 1))
        # the header holds at most ~12,700 tensor entries (its length is 16 bits); many
        # networks make slow inputs to generate, so they are the rarer case
        most = 16 if small or rng.random() < 0.8 else 2000
        networks = min(rng.randint(1, most), frames)
        segment = -(-frames // networks)
        info = AudioInfo(
            sample_rate=rng.choice((1, 8000, 44100, 768000, rng.randint(1, 768000))),
            frames=frames,
            channels=channels,
            segment_frames=segment,
        )
        in_features = 1
    layers = rng.randint(1, 3) if small else big(1, 63)
    width = rng.randint(1, 6) if small else big(1, 4095)
    if model == "siren":
        spec = SirenSpec(
            in_features,
            channels,
            layers=layers,
            width=width,
            w0_first=rng.choice((30.0, 1e-3, 1e6)),
            w0=rng.choice((30.0, 1e-3, 1e6)),
        )
    elif model == "gauss":
        spec = GaussSpec(
            in_features, channels, layers=layers, width=width, scale=rng.choice((10.0, 1e3))
        )
    elif model == "fourier":
        spec = FourierSpec(
            in_features, channels, layers=layers, width=width, octaves=rng.randint(1, 15)
        )
    else:
        spec = KanSpec(
            in_features,
            channels,
            layers=layers,
            width=width,
            grid_size=rng.randint(1, 8) if small else big(1, 255),
            input_grid_size=rng.randint(1, 8) if small else big(1, 4095),
            spline_order=rng.randint(0, 7),
            grid_range=rng.choice((1.0, 1e-3, 1e3)),
        )
    networks = info.networks
    total = spec.num_params() * networks
    entries = len(spec.tensor_shapes()) * networks
    if total > bitstream.MAX_TOTAL_PARAMS or entries > 12_000:
        spec = spec.replace(layers=1, width=1)
        total = spec.num_params() * networks
    coded = total <= 200_000  # larger files carry all-zero tensors (nothing coded)
    counts = [math.prod(shape) for _, shape in spec.tensor_shapes()] * networks
    tensors, arrays = [], []
    for count in counts:
        max_abs = rng.choice((0, 1, 7, 255)) if coded else 0
        family = Family(rng.randrange(3)) if max_abs else Family.UNIFORM
        params = EntropyParams(family, rng.randrange(40, 90), max_abs)
        arrays.append((nrng.integers(-max_abs, max_abs + 1, count).astype(np.int32), params))
        tensors.append(TensorCoding(rng.randint(-64, 0), params))
    payload = entropy.encode(arrays)
    psnr = rng.choice((None, 30.0))
    return bitstream.write(Header(info, spec, networks, tuple(tensors), psnr), payload)


def gen_sizes(rng, corpus):
    data = synth_file(rng)
    return data, data


def generate(mode: str, seed: int, index: int, corpus: list[bytes]):
    rng = random.Random(f"{seed}:{mode}:{index}")
    if mode == "raw":
        return gen_raw(rng, corpus)
    if mode == "crc":
        return gen_crc(rng, corpus)
    if mode == "struct":
        return gen_struct(rng, corpus)
    if mode == "fields":
        return gen_fields(rng, corpus, index)
    return gen_sizes(rng, corpus)


def mode_of(index: int) -> str:
    """Fixed shares, interleaved: input i's mode depends on i alone."""
    position = (index * 0.6180339887498949) % 1.0
    edge = 0.0
    for mode in MODES:
        edge += SHARES[mode]
        if position < edge:
            return mode
    return MODES[-1]


def decode_options(rng: random.Random) -> dict:
    roll = rng.random()
    if roll < 0.85:
        return {}
    if roll < 0.90:
        return {"scale": rng.choice((0.5, 2.0, 1e-3, 7.3))}
    if roll < 0.95:
        return {"size": (rng.randint(1, 40), rng.randint(1, 40))}
    return {"rate": rng.choice((1, 8000, 44100, 65536, 96000, 768000))}


# --- the worker ------------------------------------------------------------------------------


def worker(start: int, stop: int, args: dict, current, queue) -> None:
    """Decode inputs start..stop-1; `current` holds the index being decoded."""
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from kancoin import bitstream, decoder
    from kancoin.errors import KancoinError

    corpus = [Path(p).read_bytes() for p in args["corpus"]]
    known = set(corpus)
    messages: dict[str, list[str]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="kancoin-fuzz-"))
    limit_bytes = args["memory_cap_mib"] << 20
    size = _address_space()
    if size is not None:
        resource.setrlimit(resource.RLIMIT_AS, (size + limit_bytes, size + limit_bytes))
    counts: Counter = Counter()
    slowest = (0.0, -1)
    last_report = time.monotonic()
    budget = {"max_work": args["max_work"], "max_memory": args["max_memory_mib"] << 20}
    for index in range(start, stop):
        current.value = -index - 1  # generating: the watchdog blames the script, not decode
        mode = mode_of(index)
        try:
            data, _seed = generate(mode, args["seed"], index, corpus)
        except Exception:  # a bug of this script, not of the decoder: reported apart
            counts[(mode, "generator-bug")] += 1
            _save(args["out"], "generator-bug", index, mode, b"", {}, traceback.format_exc())
            continue
        rng = random.Random(f"{args['seed']}:options:{index}")
        options = decode_options(rng)
        output = None
        if rng.random() < args["write_share"]:
            suffixes = AUDIO_SUFFIXES if data[5:6] == b"\x02" else IMAGE_SUFFIXES
            output = scratch / f"out{rng.choice(suffixes)}"
        current.value = index
        began = time.perf_counter()
        try:
            decoder.decode(data, output, force=True, **options, **budget)
            outcome = "accepted"
            if mode == "raw" and data not in known:  # a splice may rebuild another seed
                outcome = "corrupt-accepted"
            elif data != bitstream.write(*bitstream.read(data)):
                outcome = "non-canonical-accepted"
        except KancoinError as exc:
            outcome = f"error:{type(exc).__name__}"
            seen = messages.setdefault(outcome, [])
            if len(seen) < 40:  # a few distinct lines per error type, for the report
                line = _shape(str(exc))
                if line not in seen:
                    seen.append(line)
        except MemoryError:
            outcome = "over-memory"
        except Exception as exc:
            text = str(exc)
            if "allocate" in text and "memory" in text:
                outcome = "over-memory"
            else:
                outcome = f"unhandled:{type(exc).__name__}"
            _save(args["out"], outcome, index, mode, data, options, traceback.format_exc())
        elapsed = time.perf_counter() - began
        if outcome in ("over-memory", "corrupt-accepted", "non-canonical-accepted"):
            _save(args["out"], outcome, index, mode, data, options, "")
        counts[(mode, outcome)] += 1
        if elapsed > slowest[0]:
            slowest = (elapsed, index)
        now = time.monotonic()
        if now - last_report > REPORT_SECONDS:
            queue.put(("counts", dict(counts), slowest, _maxrss(), messages))
            counts.clear()
            last_report = now
    queue.put(("counts", dict(counts), slowest, _maxrss(), messages))
    queue.put(("done", stop))


def _shape(message: str) -> str:
    """An error line with its numbers and paths blanked: one entry per kind of message."""
    words = []
    for word in message.split():
        if "/" in word:
            word = "PATH"
        elif any(ch.isdigit() for ch in word):
            word = "N"
        words.append(word)
    return " ".join(words)[:160]


def _address_space() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _save(out: str, outcome: str, index: int, mode: str, data: bytes, options, text: str):
    directory = Path(out) / "crashes"
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{outcome.replace(':', '-')}-{mode}-{index}"
    stem.with_suffix(".inr").write_bytes(data)
    stem.with_suffix(".txt").write_text(
        f"mode {mode}, input {index}, decode options {options}\n{text}"
    )


# --- the parent ------------------------------------------------------------------------------


def run(args) -> dict:
    out = Path(args.out)
    corpus_dir = out / "corpus"
    make_corpus(corpus_dir)
    corpus_paths = [str(p) for p in sorted(corpus_dir.glob("*.inr"))]
    shared = {
        "corpus": corpus_paths,
        "seed": args.seed,
        "out": str(out),
        "memory_cap_mib": args.memory_cap_mib,
        "max_work": args.max_work,
        "max_memory_mib": args.max_memory_mib,
        "write_share": args.write_share,
    }
    context = mp.get_context("spawn")
    counts: Counter = Counter()
    hangs, slowest, peak_rss = [], (0.0, -1), 0
    samples: dict[str, list[str]] = {}
    began = time.monotonic()
    deadline = began + args.seconds if args.seconds else None
    index, stop = args.start, args.start + args.inputs
    last_print = began
    stopping = []  # SIGTERM / SIGINT: stop at once and report what ran
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    while index < stop and (deadline is None or time.monotonic() < deadline) and not stopping:
        batch_stop = min(stop, index + args.batch)
        current = context.Value("q", STARTING, lock=False)
        queue = context.Queue()
        process = context.Process(target=worker, args=(index, batch_stop, shared, current, queue))
        process.start()
        seen, stuck_since, done = current.value, time.monotonic(), False
        cpu_since = _cpu_seconds(process.pid)
        while not done:
            try:
                message = queue.get(timeout=0.2)
                if message[0] == "done":
                    done = True
                else:
                    counts.update({tuple(k): v for k, v in message[1].items()})
                    if message[2][0] > slowest[0]:
                        slowest = message[2]
                    peak_rss = max(peak_rss, message[3])
                    for outcome, lines in message[4].items():
                        kept = samples.setdefault(outcome, [])
                        kept += [line for line in lines if line not in kept][: 12 - len(kept)]
            except Exception:
                pass
            now = time.monotonic()
            cpu = _cpu_seconds(process.pid)
            if current.value != seen:
                seen, stuck_since, cpu_since = current.value, now, cpu
            stuck = seen if seen >= 0 else -seen - 1
            # a hang is --timeout seconds of the worker's CPU on one input (wall time on a
            # shared machine says little: a niced worker can wait), or 30x that of wall time
            over = cpu - cpu_since > args.timeout or now - stuck_since > 30 * args.timeout
            if seen == STARTING:  # importing torch on a busy machine is not a hang
                stuck, over = index, False
                if now - stuck_since > 600:
                    raise SystemExit("the fuzz worker did not start in 10 minutes")
            if not done and not process.is_alive() and queue.empty():
                # the worker died without reporting (e.g. killed by the kernel): record it
                counts[(mode_of(stuck), "worker-died")] += 1
                _save_generated(args, shared, stuck, "worker-died")
                batch_stop = stuck + 1
                break
            if not done and over:
                process.kill()
                outcome = "hang" if seen >= 0 else "generator-hang"
                counts[(mode_of(stuck), outcome)] += 1
                hangs.append(stuck)
                if seen >= 0:
                    _save_generated(args, shared, stuck, outcome)
                batch_stop = stuck + 1
                break
            if (stopping or (deadline is not None and now > deadline)) and not done:
                process.kill()
                batch_stop = stuck  # the interrupted batch: counted up to its last report
                break
            if now - last_print > args.print_every:
                _progress(counts, began, now)
                last_print = now
        process.join(timeout=5)
        index = batch_stop
    elapsed = time.monotonic() - began
    report = _summary(counts, elapsed, hangs, slowest, peak_rss, args)
    report["error_lines"] = samples
    return report


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _save_generated(args, shared, index: int, outcome: str) -> None:
    corpus = [Path(p).read_bytes() for p in shared["corpus"]]
    mode = mode_of(index)
    try:
        data, _ = generate(mode, args.seed, index, corpus)
    except Exception:
        data = b""
    rng = random.Random(f"{args.seed}:options:{index}")
    _save(args.out, outcome, index, mode, data, decode_options(rng), "")


def _progress(counts: Counter, began: float, now: float) -> None:
    total = sum(counts.values())
    bad = sum(v for (m, o), v in counts.items() if _is_failure(o))
    print(
        f"[{now - began:7.0f} s] {total} inputs, {total / max(now - began, 1e-9):.0f}/s, "
        f"{bad} failures",
        file=sys.stderr,
        flush=True,
    )


def _is_failure(outcome: str) -> bool:
    return not (outcome == "accepted" or outcome.startswith("error:"))


def _summary(counts: Counter, elapsed, hangs, slowest, peak_rss, args) -> dict:
    by_mode = {mode: {} for mode in MODES}
    by_outcome: Counter = Counter()
    for (mode, outcome), value in counts.items():
        by_mode[mode][outcome] = by_mode[mode].get(outcome, 0) + value
        by_outcome[outcome] += value
    total = sum(counts.values())
    return {
        "inputs": total,
        "seconds": round(elapsed, 1),
        "inputs_per_second": round(total / max(elapsed, 1e-9), 1),
        "complete": total >= args.inputs,
        "by_outcome": dict(sorted(by_outcome.items())),
        "by_mode": {
            m: {"inputs": sum(v.values()), **dict(sorted(v.items()))} for m, v in by_mode.items()
        },
        "deep_inputs": sum(sum(by_mode[m].values()) for m in ("crc", "struct", "fields", "sizes")),
        "failures": sum(v for o, v in by_outcome.items() if _is_failure(o)),
        "hangs": hangs,
        "slowest_input": {"seconds": round(slowest[0], 3), "index": slowest[1]},
        "worker_peak_rss_mib": round(peak_rss / (1 << 20)),
        "settings": {
            "seed": args.seed,
            "start": args.start,
            "timeout_s": args.timeout,
            "memory_cap_mib": args.memory_cap_mib,
            "max_work": args.max_work,
            "max_memory_mib": args.max_memory_mib,
        },
        "loadavg": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def run_atheris(args) -> str:
    """Coverage-guided inputs with atheris (optional dependency)."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "atheris not installed: coverage-guided mode skipped (pip install atheris)"
    import subprocess

    corpus = Path(args.out) / "corpus"
    make_corpus(corpus)
    command = [sys.executable, __file__, "--atheris-child", str(args.atheris), "--out", args.out]
    result = subprocess.run(command, check=False)
    return f"atheris: {args.atheris} runs, exit {result.returncode}"


def atheris_child(runs: int, out: str) -> None:
    import atheris
    import torch

    torch.set_num_threads(1)
    with atheris.instrument_imports(include=["kancoin"]):  # coverage of kancoin alone
        from kancoin import decoder
        from kancoin.errors import KancoinError

    def one(data: bytes) -> None:
        with contextlib.suppress(KancoinError):
            decoder.decode(data, max_work=1e9, max_memory=256 << 20)

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        # libFuzzer's mutations of everything but the CRC, which is then recomputed: the
        # parser and decoder get the coverage, not the checksum test
        body = atheris.Mutate(data[:-4] if len(data) > 4 else data, max(1, max_size - 4))
        return with_crc(body)

    corpus_path = Path(out) / "atheris-corpus"  # libFuzzer adds what gains coverage here
    corpus_path.mkdir(parents=True, exist_ok=True)
    for seed_file in (Path(out) / "corpus").glob("*.inr"):
        (corpus_path / seed_file.name).write_bytes(seed_file.read_bytes())
    corpus = str(corpus_path)
    crashes = Path(out) / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    atheris.Setup(
        [
            sys.argv[0],
            f"-runs={runs}",
            f"-artifact_prefix={crashes}/",
            "-rss_limit_mb=4096",
            "-timeout=10",
            corpus,
        ],
        one,
        custom_mutator=mutate,
    )
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, help="stop after this long (CI: 60)")
    parser.add_argument("--start", type=int, default=0, help="first input index (resume)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="fuzz-out", help="corpus, crashes, report")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--memory-cap-mib", type=int, default=2048, help="per input, hard")
    parser.add_argument("--max-work", type=float, default=2e8, help="decode budget")
    parser.add_argument("--max-memory-mib", type=int, default=256, help="decode budget")
    parser.add_argument("--write-share", type=float, default=0.1, help="inputs also written")
    parser.add_argument("--batch", type=int, default=200_000, help="inputs per worker")
    parser.add_argument("--print-every", type=float, default=60.0)
    parser.add_argument("--atheris", type=int, default=0, help="coverage-guided runs")
    parser.add_argument("--atheris-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.atheris_child is not None:
        atheris_child(args.atheris_child, args.out)
        return 0
    report = run(args)
    if args.atheris:
        report["atheris"] = run_atheris(args)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
