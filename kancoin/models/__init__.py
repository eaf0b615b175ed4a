"""Coordinate networks. Model ids are explicit integers written into .inr files: never
renumber them, only add new ones."""

from __future__ import annotations

from kancoin.models.base import HeaderField, ModelSpec
from kancoin.models.finer import FinerSpec
from kancoin.models.fourier import FourierSiren, FourierSpec
from kancoin.models.gauss import GaussSpec
from kancoin.models.grid import GridModel, GridSpec
from kancoin.models.grid1d import Grid1DSpec
from kancoin.models.kan import Kan, KanSpec
from kancoin.models.kan_bases import ChebyshevKanSpec, FourierKanSpec, RbfKanSpec
from kancoin.models.relu import FfnSpec, ReluPeSpec, ReluSpec
from kancoin.models.siren import Siren, SirenSpec
from kancoin.models.wire import WireSpec

MODEL_SPECS: dict[int, type[ModelSpec]] = {
    SirenSpec.model_id: SirenSpec,
    KanSpec.model_id: KanSpec,
    FourierSpec.model_id: FourierSpec,
    GaussSpec.model_id: GaussSpec,
    GridSpec.model_id: GridSpec,
    WireSpec.model_id: WireSpec,
    FinerSpec.model_id: FinerSpec,
    ReluSpec.model_id: ReluSpec,
    ReluPeSpec.model_id: ReluPeSpec,
    FfnSpec.model_id: FfnSpec,
    ChebyshevKanSpec.model_id: ChebyshevKanSpec,
    RbfKanSpec.model_id: RbfKanSpec,
    FourierKanSpec.model_id: FourierKanSpec,
    Grid1DSpec.model_id: Grid1DSpec,
}


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
    "FourierSiren",
    "FourierSpec",
    "GridModel",
    "GridSpec",
    "HeaderField",
    "Kan",
    "KanSpec",
    "ModelSpec",
    "Siren",
    "SirenSpec",
    "register",
    "spec_class",
    "spec_class_by_name",
]
