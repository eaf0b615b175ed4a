"""What every model family provides so the container and codec can treat them alike."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class HeaderField:
    """One hyperparameter as written in the .inr header: bitstring type and allowed range."""

    name: str
    fmt: str  # bitstring token, e.g. "uint:8" or "floatle:32"
    low: float
    high: float


@dataclass(frozen=True)
class ModelSpec:
    """Hyperparameters that fully determine a network's shape; carried in the header.

    Subclasses set `model_id` (explicit, stable), `name`, and `header_fields` in the order
    they are written. A spec rebuilt from the header builds exactly the encoder's network.
    """

    model_id: ClassVar[int]
    name: ClassVar[str]
    header_fields: ClassVar[tuple[HeaderField, ...]]
    lr_scale: ClassVar[float] = 1.0  # multiplies the preset's learning rate for this family
    plan_max_layers: ClassVar[int | None] = None  # depth cap when sized from a rate (rate.plan)
    # share of coordinates per step for this family; None: the preset's (tuned for SIREN)
    batch_fraction: ClassVar[float | None] = None
    # whether presets fine-tune the rounded network (their qat_share) for this family
    fine_tunes_quantized: ClassVar[bool] = True

    in_features: int
    out_features: int

    @classmethod
    def own_codec(cls):
        """The module that trains and codes this family's payload itself (encode, load_models,
        payload_report; kancoin.grid_codec), or None for the shared per-tensor path."""
        return None

    def build(self) -> nn.Module:
        raise NotImplementedError

    def tensor_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Names and shapes of the coded tensors, in bitstream order."""
        raise NotImplementedError

    def num_params(self) -> int:
        total = 0
        for _, shape in self.tensor_shapes():
            count = 1
            for dim in shape:
                count *= dim
            total += count
        return total

    def describe(self) -> str:
        raise NotImplementedError

    def train_chunk(self) -> int | None:
        """Coordinates per forward/backward pass when fitting; None: the whole batch."""
        return None

    def header_values(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in self.header_fields}

    @classmethod
    def from_header(cls, in_features: int, out_features: int, values: dict) -> ModelSpec:
        return cls(in_features=in_features, out_features=out_features, **values)

    def replace(self, **changes) -> ModelSpec:
        return dataclasses.replace(self, **changes)


def coded_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The model's coded tensors in bitstream order (models expose `coded_tensors()`)."""
    return list(model.coded_tensors())
