"""Coordinate networks. Model ids are explicit integers written into .inr files: never
renumber them, only add new ones.

The registry holds spec classes, which do not import torch (kancoin.models.base), so a
header is read and priced before torch loads. A family whose spec module still imports
torch (the latent grid's) is registered by its import path and imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from kancoin.models.base import HeaderField, ModelSpec
from kancoin.models.finer import FinerSpec
from kancoin.models.fourier import FourierSpec
from kancoin.models.gauss import GaussSpec
from kancoin.models.kan import KanSpec
from kancoin.models.kan_bases import ChebyshevKanSpec, FourierKanSpec, RbfKanSpec
from kancoin.models.relu import FfnSpec, ReluPeSpec, ReluSpec
from kancoin.models.siren import SirenSpec
from kancoin.models.wire import WireSpec


class SpecRegistry(MutableMapping):
    """Model id -> spec class; an entry given as "module:Class" is imported when first used."""

    def __init__(self, entries: dict[int, type[ModelSpec] | str]):
        self._entries = dict(entries)

    def __getitem__(self, model_id: int) -> type[ModelSpec]:
        entry = self._entries[model_id]
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            entry = getattr(importlib.import_module(module), name)
            self._entries[model_id] = entry
        return entry

    def __iter__(self) -> Iterator[int]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __setitem__(self, model_id: int, entry: type[ModelSpec] | str) -> None:
        self._entries[model_id] = entry

    def __delitem__(self, model_id: int) -> None:
        del self._entries[model_id]


MODEL_SPECS = SpecRegistry(
    {
        SirenSpec.model_id: SirenSpec,
        KanSpec.model_id: KanSpec,
        FourierSpec.model_id: FourierSpec,
        GaussSpec.model_id: GaussSpec,
        4: "kancoin.models.grid:GridSpec",
        WireSpec.model_id: WireSpec,
        FinerSpec.model_id: FinerSpec,
        ReluSpec.model_id: ReluSpec,
        ReluPeSpec.model_id: ReluPeSpec,
        FfnSpec.model_id: FfnSpec,
        ChebyshevKanSpec.model_id: ChebyshevKanSpec,
        RbfKanSpec.model_id: RbfKanSpec,
        FourierKanSpec.model_id: FourierKanSpec,
        20: "kancoin.models.grid1d:Grid1DSpec",  # audio: the grid on the time axis
        22: "kancoin.models.grid:RasterGridSpec",  # the grid with a raster context
    }
)

# names importable from kancoin.models whose modules import torch: loaded on first access
_TORCH_NAMES = {
    "Siren": "kancoin.models.nets.siren",
    "FourierSiren": "kancoin.models.nets.fourier",
    "Kan": "kancoin.models.nets.kan",
    "GridModel": "kancoin.models.grid",
    "GridSpec": "kancoin.models.grid",
    "RasterGridSpec": "kancoin.models.grid",
    "Grid1DSpec": "kancoin.models.grid1d",
}


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(_TORCH_NAMES[name]), name)
    raise AttributeError(f"module 'kancoin.models' has no attribute {name!r}")


def spec_class(model_id: int) -> type[ModelSpec]:
    """The spec type for an id read from a file; KeyError if unknown."""
    return MODEL_SPECS[model_id]


def spec_class_by_name(name: str) -> type[ModelSpec]:
    for cls in MODEL_SPECS.values():
        if cls.name == name:
            return cls
    raise KeyError(name)


def register(cls: type[ModelSpec]) -> type[ModelSpec]:
    """Add a model family (used by modules that define one)."""
    if cls.model_id in MODEL_SPECS and MODEL_SPECS[cls.model_id] is not cls:
        raise ValueError(f"model id {cls.model_id} is taken by {MODEL_SPECS[cls.model_id]}")
    MODEL_SPECS[cls.model_id] = cls
    return cls


__all__ = [
    "MODEL_SPECS",
    "ChebyshevKanSpec",
    "FfnSpec",
    "FinerSpec",
    "FourierKanSpec",
    "FourierSpec",
    "GaussSpec",
    "HeaderField",
    "KanSpec",
    "ModelSpec",
    "RbfKanSpec",
    "ReluPeSpec",
    "ReluSpec",
    "SirenSpec",
    "WireSpec",
    "register",
    "spec_class",
    "spec_class_by_name",
]
