"""Cohort priors: the `.kprior` file (a trained body of a coordinate MLP), its identity, the
stable-rank freeze rule, and where a prior is found.

A prior holds the first `stored` layers (weights and biases) of a network trained on a
cohort of signals. An encode with a prior loads them, freezes the first K (the layer of
highest stable rank ||W||_F^2 / ||W||_2^2 and those before it, unless --freeze says
otherwise) and codes only the rest; the .inr header names the prior by its identity (the
first 8 bytes of the file's SHA-256 trailer) and K. Layout: docs/PRIOR.md; this module is
its single implementation. Parsing is as defensive as the .inr reader's: every size is
checked against the file's length before anything is allocated, no pickle.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kancoin.errors import PriorError
from kancoin.models import MODEL_SPECS, ModelSpec

MAGIC = b"KPRI"
VERSION = 1
SUFFIX = ".kprior"
ID_BYTES = 8  # what an .inr header holds of the identity
DIGEST_BYTES = 32  # SHA-256 trailer over every byte before it
MAX_FILE_BYTES = 64 << 20
MAX_PARAMS = 1 << 22  # a prior is a small body that ships with the codec
MAX_MEMBERS = 4096
MAX_NAME = 255
ENV_PATH = "KANCOIN_PRIOR_PATH"  # directories searched for priors, os.pathsep-separated
BUNDLED = Path(__file__).parent / "data" / "priors"
DTYPES = {1: np.dtype("<f2"), 2: np.dtype("<f4")}  # dtype id -> stored float type

# fixed part: magic, version, model_id, in, out, layers, width, w0_first, w0, stored,
# dtype, members, name length
_FIXED = struct.Struct(">4sBBBBBHffBBHB")


@dataclass(frozen=True)
class PriorRef:
    """What an .inr header says of its prior: identity and how many layers it froze."""

    digest: bytes  # ID_BYTES of the prior's SHA-256 trailer
    freeze: int  # leading layers (weight and bias) taken from the prior, not coded

    @property
    def hex(self) -> str:
        return self.digest.hex()


@dataclass(frozen=True, eq=False)
class Prior:
    """A parsed .kprior: the network spec it was trained as and its first `stored` layers."""

    spec: ModelSpec
    tensors: tuple[np.ndarray, ...]  # weight, bias of layers 0 .. stored-1, float32
    members: tuple[bytes, ...]  # SHA-256 of each cohort member's pixels
    name: str  # what it calls itself (the training command's NAME)
    dtype: int  # 1 = float16, 2 = float32 as stored
    sha256: bytes  # the trailer: the file's identity
    path: Path | None = None

    @property
    def stored(self) -> int:
        return len(self.tensors) // 2

    @property
    def id(self) -> bytes:
        return self.sha256[:ID_BYTES]

    def stable_ranks(self) -> list[float]:
        """||W||_F^2 / ||W||_2^2 of each stored hidden layer's weight (not the output's)."""
        ranks = []
        for layer in range(min(self.stored, self.spec.layers)):
            weight = self.tensors[2 * layer].astype(np.float64)
            ranks.append(stable_rank(weight))
        return ranks

    def rule_freeze(self) -> int:
        """The stable-rank rule: freeze up to and including the hidden layer of highest
        stable rank."""
        ranks = self.stable_ranks()
        return 1 + int(np.argmax(ranks))

    def max_freeze(self) -> int:
        return min(self.stored, self.spec.layers)

    def describe(self) -> str:
        where = f" ({self.path})" if self.path is not None else ""
        return f"{self.name} [{self.id.hex()}] {self.spec.describe()}{where}"

    def fits(self, spec: ModelSpec) -> bool:
        """Whether a network of `spec` can take this prior's layers (any depth, any output
        channels: only the hidden layers it freezes must be the prior's)."""
        ours = self.spec.replace(layers=spec.layers, out_features=spec.out_features)
        return type(spec) is type(self.spec) and ours == spec

    def apply(self, model, freeze: int) -> None:
        """Load the prior's layers into `model` (each that has the same shape) and freeze
        the first `freeze`: their parameters stop training and are no longer coded."""
        import torch  # here: reading and pricing files needs no torch (kancoin.decoder)

        tensors = list(model.all_tensors())
        with torch.no_grad():
            for index, values in enumerate(self.tensors):
                if index < len(tensors) and tuple(tensors[index].shape) == values.shape:
                    tensors[index].copy_(torch.from_numpy(values))
                elif index < 2 * freeze:
                    raise PriorError(f"prior {self.name} does not fit {self.spec.describe()}")
        model.freeze(freeze)

    def frozen_tensors(self, freeze: int) -> list[np.ndarray]:
        return list(self.tensors[: 2 * freeze])


def stable_rank(weight: np.ndarray) -> float:
    """||W||_F^2 / ||W||_2^2: how many directions a layer really uses (1 ..= min(shape))."""
    spectral = float(np.linalg.norm(weight, ord=2)) if weight.size else 0.0
    if spectral == 0.0:
        return 0.0
    return float((weight**2).sum()) / spectral**2


# writing


def to_bytes(
    spec: ModelSpec,
    tensors: list[np.ndarray],
    *,
    members: list[bytes],
    name: str,
    dtype: int = 1,
) -> bytes:
    """A .kprior file: the spec, the first len(tensors)//2 layers, the cohort's checksums."""
    if not spec.takes_prior():
        raise ValueError(f"{spec.name} networks cannot be a prior")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype}")
    stored = len(tensors) // 2
    if len(tensors) % 2 or not 1 <= stored <= spec.layers + 1:
        raise ValueError("a prior stores whole layers, 1 ..= layers + 1")
    shapes = spec.tensor_shapes()[: len(tensors)]
    for (tensor_name, shape), values in zip(shapes, tensors, strict=True):
        if tuple(values.shape) != shape:
            raise ValueError(f"{tensor_name} is {values.shape}, the spec says {shape}")
    encoded_name = name.encode()
    if len(encoded_name) > MAX_NAME or len(members) > MAX_MEMBERS:
        raise ValueError("name or member list too long")
    body = bytearray(
        _FIXED.pack(
            MAGIC,
            VERSION,
            spec.model_id,
            spec.in_features,
            spec.out_features,
            spec.layers,
            spec.width,
            spec.w0_first,
            spec.w0,
            stored,
            dtype,
            len(members),
            len(encoded_name),
        )
    )
    body += encoded_name
    for member in members:
        if len(member) != 32:
            raise ValueError("member checksums are SHA-256 digests")
        body += member
    for values in tensors:
        body += np.ascontiguousarray(values, dtype=DTYPES[dtype]).tobytes()
    return bytes(body) + hashlib.sha256(body).digest()


# reading


def from_bytes(data: bytes, *, path: Path | None = None) -> Prior:
    """Parse and validate a .kprior; PriorError with one line on anything wrong."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise PriorError("not a kancoin prior (bad magic)")
    if len(data) < 5 or data[4] != VERSION:
        version = data[4] if len(data) > 4 else "?"
        raise PriorError(f"unsupported prior version {version} (this kancoin reads {VERSION})")
    if len(data) < _FIXED.size + DIGEST_BYTES:
        raise PriorError("prior file is truncated")
    body, digest = data[:-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != digest:
        raise PriorError("prior file is corrupt or truncated (SHA-256 mismatch)")
    (_, _, model_id, in_features, out_features, layers, width, w0_first, w0, stored, dtype,
     n_members, name_len) = _FIXED.unpack_from(body)  # fmt: skip
    spec_cls = MODEL_SPECS.get(model_id)
    if spec_cls is None or not spec_cls.takes_prior():
        raise PriorError(f"prior of model id {model_id}: not a family priors support")
    checks = (
        ("in_features", in_features, 1, 3),
        ("out_features", out_features, 1, 4),
        ("layers", layers, 1, 63),
        ("width", width, 1, 4095),
        ("w0_first", w0_first, 1e-3, 1e6),
        ("w0", w0, 1e-3, 1e6),
        ("stored", stored, 1, layers + 1),
        ("dtype", dtype, 1, max(DTYPES)),
        ("members", n_members, 0, MAX_MEMBERS),
    )
    for field, value, low, high in checks:
        if not low <= value <= high:  # also rejects NaN
            raise PriorError(f"prior field {field}={value} is outside [{low:g}, {high:g}]")
    spec = spec_cls(
        in_features=in_features, out_features=out_features, layers=layers, width=width,
        w0_first=w0_first, w0=w0,
    )  # fmt: skip
    shapes = [shape for _, shape in spec.tensor_shapes()[: 2 * stored]]
    counts = [int(np.prod(shape)) for shape in shapes]
    if sum(counts) > MAX_PARAMS:
        raise PriorError(f"prior declares {sum(counts)} parameters, above {MAX_PARAMS}")
    item = DTYPES[dtype].itemsize
    expected = _FIXED.size + name_len + 32 * n_members + item * sum(counts)
    if expected != len(body):
        raise PriorError(f"prior declares {expected} bytes of fields, the file has {len(body)}")
    offset = _FIXED.size
    try:
        name = body[offset : offset + name_len].decode()
    except UnicodeDecodeError:
        raise PriorError("prior name is not UTF-8") from None
    offset += name_len
    members = tuple(bytes(body[offset + 32 * i : offset + 32 * (i + 1)]) for i in range(n_members))
    offset += 32 * n_members
    tensors = []
    for shape, count in zip(shapes, counts, strict=True):
        values = np.frombuffer(body, DTYPES[dtype], count, offset).astype(np.float32)
        if not np.isfinite(values).all():
            raise PriorError("prior holds a non-finite weight")
        tensors.append(values.reshape(shape))
        offset += item * count
    return Prior(spec, tuple(tensors), members, name, dtype, digest, path)


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int, size: int) -> Prior:
    data = Path(path).read_bytes()
    try:
        return from_bytes(data, path=Path(path))
    except PriorError as exc:
        raise PriorError(f"{path}: {exc}") from None


def load(path: str | Path) -> Prior:
    """A prior file by path (cached while the file is unchanged)."""
    path = Path(path)
    if not path.is_file():
        raise PriorError(f"{path}: no such prior file")
    stat = path.stat()
    if stat.st_size > MAX_FILE_BYTES:
        raise PriorError(f"{path}: {stat.st_size} bytes is far larger than any prior")
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


def search_dirs() -> list[Path]:
    """Where priors are looked for by name or identity: $KANCOIN_PRIOR_PATH, then the
    package's bundled priors."""
    dirs = [Path(p) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    return [*dirs, BUNDLED]


def find(name_or_path: str | Path) -> Prior:
    """A prior by path (an existing file, or anything with a / or the .kprior suffix), else
    by name: NAME.kprior in the search path."""
    text = str(name_or_path)
    candidate = Path(text)
    if candidate.is_file() or "/" in text or os.sep in text or text.endswith(SUFFIX):
        return load(candidate)
    for directory in search_dirs():
        path = directory / f"{text}{SUFFIX}"
        if path.is_file():
            return load(path)
    where = ", ".join(str(d) for d in search_dirs())
    raise PriorError(f"no prior named {text!r} (looked in {where}; ${ENV_PATH} adds places)")


def for_ref(ref: PriorRef, given: Prior | str | Path | None = None) -> Prior:
    """The prior an .inr file names: the one given (which must be it), else the first in
    the search path whose identity matches."""
    if given is not None:
        prior = given if isinstance(given, Prior) else find(given)
        if prior.id != ref.digest:
            raise PriorError(
                f"the file was coded with prior {ref.hex}, not {prior.name} ({prior.id.hex()})"
            )
        return prior
    for directory in search_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            try:
                prior = load(path)
            except PriorError:
                continue
            if prior.id == ref.digest:
                return prior
    raise PriorError(
        f"the file needs prior {ref.hex}, found neither in the package nor in "
        f"${ENV_PATH}; give it with --prior PATH"
    )


def check_fits(prior: Prior, spec: ModelSpec, freeze: int) -> None:
    """A file's spec and freeze depth against the prior it names."""
    if not prior.fits(spec):
        raise PriorError(
            f"prior {prior.name} ({prior.spec.describe()}) does not fit the file's "
            f"{spec.describe()}"
        )
    if freeze > prior.max_freeze():
        raise PriorError(f"the file freezes {freeze} layers; prior {prior.name} has {prior.stored}")


def member_digest(pixels: np.ndarray) -> bytes:
    """A cohort member's checksum: SHA-256 of its 8-bit pixels, shape included."""
    header = ("x".join(map(str, pixels.shape)) + ";").encode()
    return hashlib.sha256(header + np.ascontiguousarray(pixels).tobytes()).digest()
