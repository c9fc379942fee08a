"""The one registry implementation: named items of one kind (sets, architectures, recipes, losses, backends).

An item is added once under its name (a second ``add`` of the name is a programming error, ``ValueError``); an
unknown name is a one-line :class:`BenchError` that lists the close matches. A registry whose built-in items
register themselves on import is given a ``loader`` that imports them, run before the first lookup or listing,
never by ``add``. One item may be the default, which :meth:`Registry.names` lists first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from libkd_bench.core.errors import BenchError, unknown_name_message

Item = TypeVar("Item")


class Registry(Generic[Item]):
    """Items of one kind by name, e.g. ``Registry[Recipe]("recipe", loader=import_builtin_recipes)``."""

    def __init__(self, kind: str, *, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._loader = loader
        self._items: dict[str, Item] = {}
        self._default: str | None = None

    def add(self, name: str, item: Item, *, default: bool = False) -> Item:
        """Register ``item`` under ``name`` (and as the default when ``default``); returns ``item``."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if default and self._default is not None:
            raise ValueError(f"{self.kind}s {self._default!r} and {name!r} are both marked as the default")
        self._items[name] = item
        if default:
            self._default = name
        return item

    def instance_of(self, name: str, *, default: bool = False) -> Callable[[type], type]:
        """Class decorator: register an instance of the class, built once without arguments, under ``name``."""

        def decorate(cls: type) -> type:
            self.add(name, cls(), default=default)
            return cls

        return decorate

    def get(self, name: str) -> Item:
        """The item called ``name``; an unknown name is a BenchError naming the close matches."""
        self.load()
        try:
            return self._items[name]
        except KeyError:
            raise BenchError(unknown_name_message(self.kind, name, self._items)) from None

    def find(self, name: str) -> Item | None:
        """The item already registered under ``name``, or None; loads nothing."""
        return self._items.get(name)

    def names(self) -> list[str]:
        """Every registered name, the default first, then in name order."""
        self.load()
        return sorted(self._items, key=lambda name: (name != self._default, name))

    def items(self) -> list[tuple[str, Item]]:
        """``(name, item)`` pairs in :meth:`names` order."""
        return [(name, self._items[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items

    def load(self) -> None:
        """Run the loader (the built-in items' import); importing twice costs nothing."""
        if self._loader is not None:
            self._loader()

    @contextmanager
    def isolated(self) -> Iterator[Registry[Item]]:
        """Within the block, items added or removed are forgotten afterwards (tests that register their own)."""
        self.load()
        saved, saved_default = dict(self._items), self._default
        try:
            yield self
        finally:
            self._items, self._default = saved, saved_default

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests, inside :meth:`isolated`)."""
        self._items.pop(name, None)
        if self._default == name:
            self._default = None
