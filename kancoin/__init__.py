"""kancoin: signals compressed as tiny coordinate networks (SIREN or KAN).

import kancoin
result = kancoin.encode("photo.png", "photo.inr", bpp=0.3)
image = kancoin.decode("photo.inr", scale=2)   # float32 HxWxC in [0, 1]

The API is imported on first use, so `kancoin --version` and `--help` start without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.2.0"
__all__ = [
    "EncodeConfig",
    "EncodeResult",
    "KancoinError",
    "__version__",
    "decode",
    "encode",
    "plan_encode",
    "read_file",
]

_LAZY = {
    "EncodeConfig": "kancoin.config",
    "EncodeResult": "kancoin.results",
    "decode": "kancoin.decoder",
    "read_file": "kancoin.decoder",
    "encode": "kancoin.encoder",
    "plan_encode": "kancoin.encoder",
    "KancoinError": "kancoin.errors",
}

if TYPE_CHECKING:
    from kancoin.config import EncodeConfig
    from kancoin.decoder import decode, read_file
    from kancoin.encoder import encode, plan_encode
    from kancoin.errors import KancoinError
    from kancoin.results import EncodeResult


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kancoin' has no attribute {name!r}")
