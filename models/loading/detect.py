"""Which registered architecture a checkpoint belongs to, read from its keys and shapes alone.

An architecture's *signature* is the key -> shape map of its state dict, obtained by building it on the meta
device (no memory, no initialisation cost) with the class count its classifier shows in the checkpoint.
A checkpoint fits an architecture when the signatures are equal (BatchNorm's ``num_batches_tracked`` is
optional). Detection tries every fixed entry, and only when none fits the parametric ones (``wrn``,
``vit_cifar``), whose builder arguments are read from the shapes. Several fits are an ambiguity the caller
must settle; no fit names the closest architecture by shared keys.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from libkd_bench.datasets_gen.classes import NUM_CLASSES
from libkd_bench.models.loading.contents import shapes_of
from libkd_bench.models.registry import ArchitectureBuildError, ArchitectureEntry, registered_entries
from libkd_bench.models.user_architectures import load_all_entry_points

Shapes = Mapping[str, tuple[int, ...]]
DEFAULT_NUM_CLASSES = NUM_CLASSES  # a checkpoint that does not say: the source's classes
_BUILD_ERRORS = (ArchitectureBuildError, RuntimeError, NotImplementedError, TypeError, ValueError, AssertionError)


@dataclass(frozen=True)
class Signature:
    """Key -> shape of an architecture's state dict (optional keys dropped), and its learnable parameter count."""

    shapes: Mapping[str, tuple[int, ...]]
    num_parameters: int


@dataclass(frozen=True)
class Match:
    """A registered architecture that fits a checkpoint.

    Attributes:
        entry: the architecture.
        num_classes: the class count the checkpoint's classifier has.
        kwargs: builder arguments (read from the shapes for a parametric family, else the caller's options).
        layout: the key prefix removed to fit (see ``StateDict.layouts``).
    """

    entry: ArchitectureEntry
    num_classes: int
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    layout: str = ""

    @property
    def name(self) -> str:
        return self.entry.name

    def label(self) -> str:
        """The name with any builder arguments, e.g. ``wrn(depth=16, widen_factor=4)``."""
        extra = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.name}({extra})" if extra else self.name


@functools.lru_cache(maxsize=256)
def _signature(entry: ArchitectureEntry, kwargs: tuple[tuple[str, Any], ...], num_classes: int) -> Signature:
    with torch.device("meta"):
        module = entry.build(num_classes, **dict(kwargs))
    return Signature(shapes_of(module.state_dict()), sum(p.numel() for p in module.parameters()))


def signature(entry: ArchitectureEntry, num_classes: int, kwargs: Mapping[str, Any] | None = None) -> Signature:
    """The signature of ``entry`` built with ``num_classes`` and ``kwargs`` (cached per process)."""
    return _signature(entry, tuple(sorted((kwargs or {}).items())), num_classes)


def classifier_classes(entry: ArchitectureEntry, shapes: Shapes) -> int | None:
    """Rows of the entry's classifier weight in ``shapes`` (a linear layer, or a 1x1 convolution giving class
    evidence per position); None without a declared classifier or its weight."""
    if not entry.classifier:
        return None
    shape = shapes.get(f"{entry.classifier[0]}.weight")
    linear = shape is not None and len(shape) == 2
    pointwise = shape is not None and len(shape) == 4 and tuple(shape[2:]) == (1, 1)
    return shape[0] if linear or pointwise else None


def _fit(entry: ArchitectureEntry, shapes: Shapes, kwargs: Mapping[str, Any], num_classes: int | None) -> Match | None:
    classes = classifier_classes(entry, shapes)
    if entry.classifier and classes is None:
        return None
    if num_classes is not None and classes is not None and classes != num_classes:
        return None
    classes = classes or num_classes or DEFAULT_NUM_CLASSES
    try:
        expected = signature(entry, classes, kwargs).shapes
    except _BUILD_ERRORS:  # the options do not apply to this architecture
        return None
    return Match(entry, classes, dict(kwargs)) if expected == shapes else None


def detect_architecture(
    layouts: Sequence[tuple[str, Mapping[str, torch.Tensor]]],
    options: Mapping[str, Any] | None = None,
    num_classes: int | None = None,
) -> list[Match]:
    """Every architecture that fits the first layout (most prefixes removed first) for which any fits.

    Args:
        layouts: (stripped prefix, weights) candidates, as ``StateDict.layouts``.
        options: builder arguments the caller gave; parametric families merge them with what they infer.
        num_classes: the class count the caller gave, if any.
    """
    options = dict(options or {})
    load_all_entry_points()
    entries = registered_entries()
    for prefix, weights in reversed(layouts):
        shapes = shapes_of(weights)
        found = [m for e in entries if e.infer_kwargs is None and (m := _fit(e, shapes, options, num_classes))]
        if not found:
            for entry in (e for e in entries if e.infer_kwargs is not None):
                inferred = entry.infer_kwargs(shapes, options)
                if inferred is not None and (match := _fit(entry, shapes, inferred, num_classes)):
                    found.append(match)
        if found:
            return [Match(m.entry, m.num_classes, m.kwargs, prefix) for m in found]
    return []


def closest_architecture(shapes: Shapes) -> str | None:
    """The fixed architecture sharing the most keys with ``shapes`` (Jaccard >= 0.5), for error messages."""
    best, best_score = None, 0.5
    keys = set(shapes)
    for entry in registered_entries():
        if entry.infer_kwargs is not None:
            continue
        try:
            expected = set(signature(entry, DEFAULT_NUM_CLASSES).shapes)
        except _BUILD_ERRORS:
            continue
        score = len(keys & expected) / len(keys | expected)
        if score > best_score:
            best, best_score = entry.name, score
    return best


def _first(keys: list[str], limit: int) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def describe_mismatch(expected: Shapes, shapes: Shapes, limit: int = 3) -> str:
    """What differs between an architecture's signature and a checkpoint's shapes, first keys first."""
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    resized = [k for k in expected if k in shapes and expected[k] != shapes[k]]
    parts = []
    if missing:
        parts.append(f"missing keys {_first(missing, limit)}")
    if unexpected:
        parts.append(f"unexpected keys {_first(unexpected, limit)}")
    if resized:
        key = resized[0]
        more = f" (+{len(resized) - 1} more)" if len(resized) > 1 else ""
        parts.append(f"shape of {key} is {list(shapes[key])} in the checkpoint, {list(expected[key])} here{more}")
    return "; ".join(parts) or "no difference"
