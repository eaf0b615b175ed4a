"""How far the entropy coder's parametric models are from the weights' empirical entropy.

Per tensor of each .inr file, the bits its coded model (uniform, Laplace or Gaussian, see
kancoin/entropy.py) spends on the quantized integers against their zeroth-order empirical
entropy. The gap bounds what a coded histogram per tensor could save before paying for the
histogram itself.

    python bench/entropy_gap.py FILE.inr [FILE.inr ...]
"""

from __future__ import annotations

import argparse

import numpy as np

import kancoin
from kancoin import entropy


def empirical_bits(ints: np.ndarray) -> float:
    _, counts = np.unique(ints, return_counts=True)
    return float(-(counts * np.log2(counts / counts.sum())).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    total_coded = total_empirical = 0.0
    print("file                                     payload bits   model bits   entropy bits")
    for path in args.files:
        header, payload = kancoin.read_file(path)
        models = [t.entropy for t in header.tensors]
        tensors = entropy.decode(payload, list(zip(header.tensor_counts(), models, strict=True)))
        coded = sum(entropy.estimate_bits(v, m) for v, m in zip(tensors, models, strict=True))
        empirical = sum(empirical_bits(v) for v in tensors)
        total_coded += coded
        total_empirical += empirical
        print(f"{path[-40:]:40} {8 * len(payload):13d} {coded:12.0f} {empirical:14.0f}")
    gap = 100 * (total_coded / total_empirical - 1)
    print(f"models spend {gap:.1f} % more than the empirical entropy")


if __name__ == "__main__":
    main()
