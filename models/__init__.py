"""Model registry and checkpoint loading: from a checkpoint file (or ``zoo:NAME``) to a wrapped model.

The public names below are imported on first use, so ``import models`` (and the command line's ``--help``)
stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.checkpoints import CheckpointInfo
    from models.loading import LoadedModel, load_model
    from models.registry import (
        create_architecture,
        get_architecture,
        is_architecture,
        list_architectures,
        register_architecture,
    )
    from models.spec import Interpolation, ModelSpec, Preset, SpecOverrides

_EXPORTS = {
    "CheckpointInfo": "models.checkpoints",
    "LoadedModel": "models.loading",
    "load_model": "models.loading",
    "create_architecture": "models.registry",
    "get_architecture": "models.registry",
    "is_architecture": "models.registry",
    "list_architectures": "models.registry",
    "register_architecture": "models.registry",
    "Interpolation": "models.spec",
    "ModelSpec": "models.spec",
    "Preset": "models.spec",
    "SpecOverrides": "models.spec",
}
__all__ = [
    "CheckpointInfo",
    "Interpolation",
    "LoadedModel",
    "ModelSpec",
    "Preset",
    "SpecOverrides",
    "create_architecture",
    "get_architecture",
    "is_architecture",
    "list_architectures",
    "load_model",
    "register_architecture",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
