"""kancoin: signals compressed as tiny coordinate networks (SIREN or KAN).

import kancoin
result = kancoin.encode("photo.png", "photo.inr", bpp=0.3)
image = kancoin.decode("photo.inr", scale=2)   # float32 HxWxC in [0, 1]
"""

from kancoin.config import EncodeConfig
from kancoin.decoder import decode, read_file
from kancoin.encoder import encode, plan_encode
from kancoin.errors import KancoinError
from kancoin.results import EncodeResult

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
