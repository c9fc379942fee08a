"""Architectures from outside libkd-bench: a Python file named on the command line, or an installed package.

- ``--arch-module path/to/file.py:builder`` imports the file and registers ``builder`` under its own name
  (``builder(num_classes=..., **kwargs) -> torch.nn.Module``); ``--arch-module path/to/file.py`` just imports
  it, for files that register themselves with ``libkd_bench.models.registry.register_architecture``.
  The file's own directory, and any ``--arch-path DIR`` (a repository root), come first on ``sys.path``, so a
  KD repository's ``from models import model_dict`` finds that repository's ``models`` package. libkd-bench's
  own modules all live under ``libkd_bench``, so nothing the user's code imports can shadow them.
- A package declares builders in the entry-point group ``libkd_bench.architectures``, e.g. in its
  ``pyproject.toml``: ``[project.entry-points."libkd_bench.architectures"] my_student = "pkg.models:build"``.
  Entry points are listed by name without importing them; one is imported when its name is used, and all are
  imported when detection needs every candidate.

Importing a user file runs its code: it is the user's own code, named explicitly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.models.registry import register_architecture, registered_entries, registered_entry

ENTRY_POINT_GROUP = "libkd_bench.architectures"
USER_FAMILY = "user"
_IMPORTED_FILES: dict[Path, ModuleType] = {}
_USER_DIRS: set[Path] = set()  # directories the user put on sys.path (--arch-path, --arch-module files' folders)
INSTALLED_PARTS = {"site-packages", "dist-packages"}


def _split_reference(reference: str) -> tuple[Path, str | None]:
    """``file.py:builder`` -> (path, "builder"); ``file.py`` -> (path, None)."""
    head, separator, tail = reference.rpartition(":")
    if separator and head.endswith(".py") and tail.isidentifier():
        return Path(head), tail
    return Path(reference), None


def add_arch_paths(directories: Sequence[str | Path]) -> None:
    """Put the user's ``--arch-path`` directories first on ``sys.path`` (in the order given)."""
    for directory in reversed([Path(d).expanduser().resolve() for d in directories]):
        if not directory.is_dir():
            raise BenchError(f"--arch-path {directory} is not a directory; give the root of the repository to import")
        _prepend_to_sys_path(directory)


def _prepend_to_sys_path(directory: Path) -> None:
    # Kept for the whole run: builders often import lazily (``from models.resnet import ...`` inside the call).
    _USER_DIRS.add(directory.resolve())
    entry = str(directory)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    if path in _IMPORTED_FILES:
        return _IMPORTED_FILES[path]
    if not path.is_file() or path.suffix != ".py":
        raise BenchError(f"--arch-module {path} is not a Python file; give path/to/file.py[:builder]")
    _USER_DIRS.add(path.parent)  # also when the folder was on sys.path already (PYTHONPATH)
    if str(path.parent) not in sys.path:
        _prepend_to_sys_path(path.parent)
    name = f"libkd_bench_user_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"--arch-module {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # classes defined there must be findable by name (pickling, dataclasses)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's code: any failure, sys.exit included, is one line
        del sys.modules[name]
        reason = f"it called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        raise BenchError(f"importing --arch-module {path} failed: {reason}") from None
    _IMPORTED_FILES[path] = module
    return module


def user_code_modules() -> dict[str, Path]:
    """The modules imported from the user's own files, by name, with their files: the ``--arch-module`` files and
    what they imported from their folders or an ``--arch-path`` (installed packages and libkd-bench excluded).
    Workers of a cluster without the user's files get these modules' code with the model."""
    found = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name == "libkd_bench" or name.startswith("libkd_bench."):
            continue
        path = Path(file).resolve()
        if INSTALLED_PARTS.isdisjoint(path.parts) and any(path.is_relative_to(d) for d in _USER_DIRS):
            found[name] = path
    return found


def _register_builder(name: str, builder: Any, source: str) -> None:
    existing = registered_entry(name)
    if existing is not None:
        if existing.builder is not builder:
            raise BenchError(f"architecture {name!r} from {source} is already registered from {existing.source}")
        return
    doc = (getattr(builder, "__doc__", None) or "").strip().splitlines()
    register_architecture(name, family=USER_FAMILY, source=source, description=doc[0] if doc else "user architecture")(
        builder
    )


def load_arch_module(reference: str) -> list[str]:
    """Import ``path.py[:builder]`` and register its builder; returns the architecture names it added or named."""
    path, builder_name = _split_reference(reference)
    before = {entry.name for entry in registered_entries()}
    module = _import_file(path)
    if builder_name is not None:
        builder = getattr(module, builder_name, None)
        if not callable(builder):
            callables = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
            raise BenchError(unknown_name_message(f"builder in {path}", builder_name, callables))
        _register_builder(builder_name, builder, str(path))
        return [builder_name]
    return sorted({entry.name for entry in registered_entries()} - before)


def _entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def entry_point_names() -> list[str]:
    """Names declared in the entry-point group (nothing is imported)."""
    return sorted({ep.name for ep in _entry_points()})


def _load(ep: metadata.EntryPoint) -> None:
    distribution = getattr(ep.dist, "name", None) or "an installed package"
    try:
        target = ep.load()
    except (Exception, SystemExit) as exc:  # third-party code: one line naming the entry point and its package
        raise BenchError(
            f"architecture entry point {ep.name} = {ep.value} of {distribution} failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if registered_entry(ep.name) is not None:  # the target registered itself on import
        return
    if not callable(target) or isinstance(target, ModuleType):
        raise BenchError(f"architecture entry point {ep.name} = {ep.value} of {distribution} is not a builder")
    _register_builder(ep.name, target, f"{distribution} ({ep.value})")


def load_entry_point(name: str) -> None:
    """Import the entry point called ``name``, if one is declared; registers it."""
    for ep in _entry_points():
        if ep.name == name:
            _load(ep)
            return


def load_all_entry_points() -> None:
    """Import every declared entry point (detection must consider them all)."""
    for ep in _entry_points():
        if registered_entry(ep.name) is None:
            _load(ep)
