"""A registry of interchangeable backends (segmenters, texture synthesizers): one instance per name.

Backends register their class with a decorator; the class is constructed once, without arguments. One of them
may be the default, which ``names()`` lists first. An unknown name fails with the close matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from libkd_bench.core.errors import BenchError, unknown_name_message

Backend = TypeVar("Backend")


class BackendRegistry(Generic[Backend]):
    """Backends of one kind, e.g. ``BackendRegistry[Segmenter]("segmentation backend")``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._backends: dict[str, Backend] = {}
        self._default: str | None = None

    def register(self, name: str, *, default: bool = False) -> Callable[[type], type]:
        """Class decorator registering an instance of the class under ``name``."""

        def decorate(cls: type) -> type:
            if name in self._backends:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if default and self._default is not None:
                raise ValueError(f"{self.kind}s {self._default!r} and {name!r} are both marked as the default")
            self._backends[name] = cls()
            if default:
                self._default = name
            return cls

        return decorate

    def names(self) -> tuple[str, ...]:
        """Backend names, the default first."""
        return tuple(sorted(self._backends, key=lambda name: name != self._default))

    def get(self, name: str) -> Backend:
        try:
            return self._backends[name]
        except KeyError:
            raise BenchError(unknown_name_message(self.kind, name, self._backends)) from None
