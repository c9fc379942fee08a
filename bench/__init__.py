"""libkd-bench: which inductive biases did a distilled CIFAR-10 student inherit from its teacher?

From Python, :func:`evaluate` scores a model (in memory, a checkpoint or ``zoo:NAME``) on a set store and returns
its run records, as ``libkd-bench score`` does from the command line. The repository's folders ``bench/``,
``models/`` and ``datasets_gen/`` install as ``libkd_bench``, ``libkd_bench.models`` and
``libkd_bench.datasets_gen`` (docs/DESIGN.md maps the layout).

Importing this package is cheap on purpose: the command line must answer ``--help`` without torch, so the API
below is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libkd_bench.api import Evaluation, Model, evaluate

__version__ = "0.1.0"
__all__ = ["Evaluation", "Model", "__version__", "evaluate"]
_API = {"Evaluation", "Model", "evaluate"}


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'libkd_bench' has no attribute {name!r}")
    return getattr(importlib.import_module("libkd_bench.api"), name)
