"""Model registry and checkpoint loading: from a checkpoint file (or ``zoo:NAME``) to a wrapped model.

The public names below are imported on first use, so ``import models`` (and the command line's ``--help``)
stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libkd_bench.core.normalisation import Preset
    from libkd_bench.models.loading.checkpoints import CheckpointInfo
    from libkd_bench.models.loading.load import LoadedModel, load_model
    from libkd_bench.models.registry import (
        create_architecture,
        get_architecture,
        is_architecture,
        list_architectures,
        register_architecture,
    )
    from libkd_bench.models.spec import Interpolation, ModelSpec, SpecOverrides

_EXPORTS = {
    "CheckpointInfo": "libkd_bench.models.loading.checkpoints",
    "LoadedModel": "libkd_bench.models.loading.load",
    "load_model": "libkd_bench.models.loading.load",
    "create_architecture": "libkd_bench.models.registry",
    "get_architecture": "libkd_bench.models.registry",
    "is_architecture": "libkd_bench.models.registry",
    "list_architectures": "libkd_bench.models.registry",
    "register_architecture": "libkd_bench.models.registry",
    "Interpolation": "libkd_bench.models.spec",
    "ModelSpec": "libkd_bench.models.spec",
    "Preset": "libkd_bench.core.normalisation",
    "SpecOverrides": "libkd_bench.models.spec",
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
