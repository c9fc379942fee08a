"""The set store: one directory per derived set, memory-mappable ``.npy`` arrays and a ``manifest.json``.

Layout of ``SETS_DIR/<set>/``:

- ``images.npy``: uint8 (S, N, 32, 32, 3), one slab per severity level (S = 1 for sets without levels);
- ``labels.npy``: int64 (N,), the label a model should predict;
- further per-image arrays a generator declares (``shape_label.npy``, ``texture_label.npy``, ``masks.npy`` ...);
- ``manifest.json``: set, generator, cue, backend, parameters, severities, seed, source, versions, the
  sha256 of every array file, the files the backend loaded (``resources``: weights file and sha256) and, for a
  set made from other sets, their identity (``inputs``: backend, resources and array hashes of each).

A set is written into a hidden temporary directory and renamed into place when complete; loading checks
every hash, so a tampered or truncated set is refused, and so is a set whose inputs have since been rebuilt
differently (it would no longer share them with its sibling sets).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from libkd_bench.core.atomic_io import atomic_directory, is_temporary
from libkd_bench.core.errors import BenchError
from libkd_bench.core.provenance import sha256_file

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ArrayRecord:
    file: str
    sha256: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Severity:
    """One severity level: its 1-based number and the parameter value that defines it."""

    level: int
    parameter: str | None
    value: Any

    @property
    def label(self) -> str:
        return f"{self.parameter}={self.value}" if self.parameter else "-"


@dataclass(frozen=True)
class SetManifest:
    set: str
    generator: str
    cue: str
    backend: str | None
    parameters: Mapping[str, Any]
    severities: tuple[Severity, ...]
    seed: int
    source: Mapping[str, Any]
    versions: Mapping[str, str]
    arrays: Mapping[str, ArrayRecord] = field(default_factory=dict)
    resources: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    subset: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    revision: int = 1

    def array_hashes(self) -> dict[str, str]:
        """sha256 of every array file, by array name: what a set made from this one records as its input."""
        return {array: record.sha256 for array, record in self.arrays.items()}

    def recipe(self) -> dict[str, Any]:
        """Everything that decides the set's content; equal recipes give byte-identical sets."""
        data = self.to_json()
        data.pop("arrays")
        data.pop("subset")  # follows from the inputs: which images the gate of a required set kept
        data.pop("summary")  # statistics of the content, which the rest decides
        return data

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["parameters"] = dict(self.parameters)
        data["source"] = dict(self.source)
        data["versions"] = dict(self.versions)
        data["resources"] = dict(self.resources)
        data["inputs"] = dict(self.inputs)
        data["subset"] = dict(self.subset)
        data["summary"] = dict(self.summary)
        data["severities"] = [asdict(s) for s in self.severities]
        data["arrays"] = {name: {**asdict(rec), "shape": list(rec.shape)} for name, rec in self.arrays.items()}
        return json.loads(json.dumps(data))  # normalise tuples to lists so comparisons with read files hold

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SetManifest:
        return cls(
            set=data["set"],
            generator=data["generator"],
            cue=data["cue"],
            backend=data.get("backend"),
            parameters=data["parameters"],
            severities=tuple(Severity(**s) for s in data["severities"]),
            seed=int(data["seed"]),
            source=data["source"],
            versions=data["versions"],
            arrays={
                name: ArrayRecord(rec["file"], rec["sha256"], tuple(rec["shape"]), rec["dtype"])
                for name, rec in data["arrays"].items()
            },
            resources=data.get("resources", {}),
            inputs=data.get("inputs", {}),
            subset=data.get("subset", {}),
            summary=data.get("summary", {}),
            format_version=int(data.get("format_version", FORMAT_VERSION)),
            revision=int(data.get("revision", 1)),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class StoredSet:
    """A verified set: its manifest and read-only memory maps of its arrays."""

    path: Path
    manifest: SetManifest
    arrays: Mapping[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.manifest.set

    @property
    def images(self) -> np.ndarray:
        """uint8 (S, N, 32, 32, 3)."""
        return self.arrays["images"]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays["labels"]

    @property
    def severities(self) -> tuple[Severity, ...]:
        return self.manifest.severities

    @property
    def external(self) -> bool:
        """True for a set whose images do not come from the clean split (not paired with it image by image)."""
        return bool(self.manifest.resources.get("external"))

    def sha256(self, array: str = "images") -> str:
        return self.manifest.arrays[array].sha256


class SetDraft:
    """A set being written into a temporary directory; arrays are memory-mapped files there."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._arrays: dict[str, np.ndarray] = {}

    def allocate(self, name: str, shape: tuple[int, ...], dtype: np.dtype | str) -> np.ndarray:
        """A zero-filled writable memory map ``<name>.npy`` of the given shape and dtype."""
        path = self.directory / f"{name}.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        _reserve(path)
        self._arrays[name] = array
        return array

    def put(self, name: str, array: np.ndarray) -> None:
        self.allocate(name, array.shape, array.dtype)[...] = array

    def finish(self, manifest: SetManifest) -> SetManifest:
        records = {}
        for name, array in sorted(self._arrays.items()):
            if isinstance(array, np.memmap):
                array.flush()
            file = self.directory / f"{name}.npy"
            records[name] = ArrayRecord(file.name, sha256_file(file), tuple(array.shape), array.dtype.str)
        self._arrays.clear()
        complete = replace(manifest, arrays=records)
        (self.directory / MANIFEST).write_text(complete.dumps())
        return complete


def _reserve(path: Path) -> None:
    """Give the sparse file behind a memory map its blocks now: on a full disk the write then fails here with
    ENOSPC (an OSError the command reports) instead of killing the process with SIGBUS when a page is touched."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # a file system without fallocate: nothing to reserve
            return
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


class SetStore:
    """All sets of one clean split under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def names(self) -> list[str]:
        """Complete sets (a manifest present, not a temporary directory), sorted by name."""
        return [p.name for p in self._set_dirs() if (p / MANIFEST).is_file()]

    def damaged(self) -> list[str]:
        """Directories that hold arrays but no manifest (one deleted, or a copy cut short), sorted by name."""
        return [p.name for p in self._set_dirs() if not (p / MANIFEST).is_file() and any(p.glob("*.npy"))]

    def _set_dirs(self) -> list[Path]:
        """The store's directories that are not temporary, sorted by name."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not is_temporary(p))

    def manifest(self, name: str) -> SetManifest | None:
        """The manifest as written, without checking the arrays; None when the set does not exist."""
        file = self.path(name) / MANIFEST
        if not file.is_file():
            return None
        try:
            manifest = SetManifest.from_json(json.loads(file.read_text()))
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError, UnicodeDecodeError) as exc:
            reason = "nested too deep" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
            message = f"set {name}: {file} is not a valid manifest ({reason}); rebuild it with --force"
            raise BenchError(message) from None
        if manifest.set != name:
            raise BenchError(
                f"folder {name} of {self.root} holds set {manifest.set!r} (generator {manifest.generator}); a set is "
                f"read under its own name: rename the folder to {manifest.set} or rebuild {name} with --force"
            )
        return manifest

    def load(self, name: str, verify: bool = True) -> StoredSet:
        manifest = self.manifest(name)
        if manifest is None:
            raise BenchError(f"set {name!r} not found in {self.root}; create it with libkd-bench generate-sets")
        self._check_inputs(name, manifest)
        directory = self.path(name)
        arrays = {}
        for array_name, record in manifest.arrays.items():
            file = directory / record.file
            if not file.is_file():
                raise BenchError(f"set {name}: {file} is missing; rebuild it with generate-sets --force")
            if verify and sha256_file(file) != record.sha256:
                raise BenchError(
                    f"set {name}: {record.file} does not match its manifest hash (modified or truncated); "
                    f"rebuild it with libkd-bench generate-sets --sets {name} --force"
                )
            try:
                array = np.load(file, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:
                raise BenchError(f"set {name}: {file} cannot be read ({exc}); rebuild it with --force") from None
            if tuple(array.shape) != tuple(record.shape) or array.dtype.str != record.dtype:
                raise BenchError(f"set {name}: {record.file} has shape {array.shape}, manifest says {record.shape}")
            arrays[array_name] = array
        return StoredSet(directory, manifest, arrays)

    def _check_inputs(self, name: str, manifest: SetManifest) -> None:
        """Refuse a set whose input sets in this store are no longer the ones it was made from."""
        for required, identity in manifest.inputs.items():
            current = self.manifest(required)
            hashes = current.array_hashes() if current else None
            if hashes is not None and hashes != identity.get("arrays"):
                raise BenchError(
                    f"set {name} was made from another version of set {required} than the one in {self.root}; "
                    f"rebuild it with libkd-bench generate-sets --sets {name}"
                )

    @contextlib.contextmanager
    def draft(self, name: str) -> Iterator[SetDraft]:
        """Write a set atomically: fill the draft, call ``finish(manifest)``; it replaces any existing set."""
        with atomic_directory(self.path(name)) as tmp:
            draft = SetDraft(tmp)
            yield draft
            if not (tmp / MANIFEST).is_file():
                raise RuntimeError(f"draft of set {name} left without finish(manifest)")
