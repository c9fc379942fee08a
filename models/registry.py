"""The architecture registry: builders filled in by a decorator, looked up by name, unknown names fail loudly.

A builder is ``fn(num_classes, **kwargs) -> torch.nn.Module`` returning a randomly initialised network whose
``state_dict`` keys match the public repository it reproduces, so that repository's checkpoints load with
``strict=True``. Names come from three places: the built-in families under ``libkd_bench.models.architectures``
(imported on first use), user files (``--arch-module``) and the ``libkd_bench.architectures`` entry-point group (see
``libkd_bench.models.user_architectures``). ``timm:NAME`` names any timm model without registering it up front.

This module imports no torch; the families do, when they are first needed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.core.normalisation import Preset
from libkd_bench.core.registry import Registry
from libkd_bench.models.spec import CIFAR_INPUT_SIZE, Interpolation, SpecOverrides

Builder = Callable[..., Any]  # (num_classes: int, **kwargs) -> torch.nn.Module
KwargsInference = Callable[[Mapping[str, tuple[int, ...]], Mapping[str, Any]], "dict[str, Any] | None"]
PREFIX_SEPARATOR = ":"
NO_SPATIAL_LAYER = ""  # attention_layer of a network with no spatial features (e.g. a colour histogram)


class ArchitectureBuildError(BenchError):
    """A builder that raised, or returned something other than a network; detection skips such a candidate."""


@dataclass(frozen=True, eq=False)
class ArchitectureEntry:
    """A registered architecture (hashed by identity, so signatures can be cached per entry).

    Attributes:
        name: registry name.
        builder: ``builder(num_classes=..., **kwargs)`` -> network.
        family: group shown by ``list-models`` (``cifar_resnet_a``, ``vit``, ...).
        source: the public code whose state-dict layout the builder reproduces.
        description: one line for ``list-models``.
        classifier: module names of the classification heads; the first one's ``.weight`` has num_classes
            rows. None when unknown (user builders): the class count then comes from the caller, default 10.
        defaults: what the architecture's checkpoints usually need (preset, input size, interpolation).
        kwargs: fixed builder keyword arguments of this entry.
        infer_kwargs: for a parametric family (``vit_cifar``, ``wrn``): reads builder keyword arguments from
            checkpoint shapes and the caller's options, or returns None when the shapes are not of this family.
            Detection tries parametric entries only when no fixed entry fits.
        attention_layer: module (dotted name inside the network, ``-1`` = last child) whose output Grad-CAM
            explains: the last convolutional stage of a CNN, or the last block's first LayerNorm of a ViT (its
            (N, tokens, C) output's patch tokens are read as a grid). :data:`NO_SPATIAL_LAYER` for a network
            without spatial features (its map is uniform); None when undeclared (user and timm builders: the
            last 4-D or token output of a dry-run forward is used).
    """

    name: str
    builder: Builder
    family: str
    source: str
    description: str
    classifier: tuple[str, ...] | None = None
    defaults: SpecOverrides = field(default_factory=SpecOverrides)
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    infer_kwargs: KwargsInference | None = None
    attention_layer: str | None = None

    def build(self, num_classes: int, **kwargs: Any) -> Any:
        """A new network with random weights (on the current default device).

        Raises:
            ArchitectureBuildError: the builder failed or returned something that is not a ``torch.nn.Module`` (a
                builder from the user's files or a package is code libkd-bench does not control).
        """
        import torch

        try:
            network = self.builder(num_classes=num_classes, **{**self.kwargs, **kwargs})
        except BenchError:
            raise
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ArchitectureBuildError(
                f"architecture {self.name} ({self.source}) failed to build: {type(exc).__name__}: {reason}; fix the "
                "builder or its --arch-option values"
            ) from None
        if not isinstance(network, torch.nn.Module):
            raise ArchitectureBuildError(
                f"architecture {self.name} ({self.source}) built a {type(network).__name__}, not a torch.nn.Module; "
                "the builder must return the network"
            )
        return network


def _load_builtin_architectures() -> None:
    import libkd_bench.models.architectures  # noqa: F401  (registers on import)


_ENTRIES: Registry[ArchitectureEntry] = Registry("architecture", loader=_load_builtin_architectures)
_PREFIX_RESOLVERS: Registry[Callable[[str], ArchitectureEntry]] = Registry("architecture prefix")


def register_architecture(
    name: str | None = None,
    *,
    family: str,
    source: str,
    description: str,
    classifier: tuple[str, ...] | None = None,
    preset: Preset = Preset.CIFAR10,
    input_size: int = CIFAR_INPUT_SIZE,
    interpolation: Interpolation = Interpolation.BILINEAR,
    kwargs: Mapping[str, Any] | None = None,
    infer_kwargs: KwargsInference | None = None,
    attention_layer: str | None = None,
) -> Callable[[Builder], Builder]:
    """Register the decorated builder under ``name`` (default: the function's name)."""

    def decorate(builder: Builder) -> Builder:
        key = name or builder.__name__
        if PREFIX_SEPARATOR in key:
            raise ValueError(f"architecture name {key!r} must not contain {PREFIX_SEPARATOR!r}")
        _ENTRIES.add(
            key,
            ArchitectureEntry(
                name=key,
                builder=builder,
                family=family,
                source=source,
                description=description,
                classifier=classifier,
                defaults=SpecOverrides(preset=preset, input_size=input_size, interpolation=interpolation),
                kwargs=dict(kwargs or {}),
                infer_kwargs=infer_kwargs,
                attention_layer=attention_layer,
            ),
        )
        return builder

    return decorate


def register_prefix(prefix: str) -> Callable[[Callable[[str], ArchitectureEntry]], Callable[[str], ArchitectureEntry]]:
    """Register a resolver for names ``PREFIX:REST`` (``timm:resnet18``); it returns the entry for REST."""

    def decorate(resolver: Callable[[str], ArchitectureEntry]) -> Callable[[str], ArchitectureEntry]:
        return _PREFIX_RESOLVERS.add(prefix, resolver)

    return decorate


def list_architectures(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style ``pattern``, entry-point architectures included (not imported)."""
    from libkd_bench.models.user_architectures import entry_point_names

    names = set(_ENTRIES.names()) | set(entry_point_names())
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def is_architecture(name: str) -> bool:
    try:
        get_architecture(name)
    except BenchError:
        return False
    return True


def get_architecture(name: str) -> ArchitectureEntry:
    """The entry of ``name``; a miss loads a matching entry point, then fails with the close matches."""
    from libkd_bench.models.user_architectures import load_entry_point

    _ENTRIES.load()
    prefix, separator, rest = name.partition(PREFIX_SEPARATOR)
    if separator:
        return _PREFIX_RESOLVERS.get(prefix)(rest)
    if name not in _ENTRIES:
        load_entry_point(name)
    if name not in _ENTRIES:
        raise BenchError(unknown_name_message("architecture", name, list_architectures()))
    return _ENTRIES.get(name)


def registered_entry(name: str) -> ArchitectureEntry | None:
    """The entry already registered under ``name``, or None; loads nothing."""
    return _ENTRIES.find(name)


def registered_entries() -> list[ArchitectureEntry]:
    """Every registered entry (built-in, user files and entry points already loaded), in name order."""
    return [entry for _, entry in _ENTRIES.items()]


def repository_registrar(family: str, source: str, preset: Preset) -> Callable[[str, str, str, str, Builder], None]:
    """The registration function of one public repository's architectures: family, source (repository and commit)
    and published preset fixed; each call names one architecture, its description, classifier module, Grad-CAM
    layer and builder."""

    def register(name: str, description: str, classifier: str, attention_layer: str, builder: Builder) -> None:
        register_architecture(
            name,
            family=family,
            source=source,
            description=description,
            classifier=(classifier,),
            preset=preset,
            attention_layer=attention_layer,
        )(builder)

    return register


def create_architecture(name: str, num_classes: int = 10, **kwargs: Any) -> Any:
    """A randomly initialised network of architecture ``name`` with ``num_classes`` outputs."""
    return get_architecture(name).build(num_classes, **kwargs)
