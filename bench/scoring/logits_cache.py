"""Per-image logits cached next to the run records, so metrics are recomputed without a forward pass.

Layout under ``RESULTS/cache/<checkpoint sha256[:16]>-<spec digest[:8]>/`` (one directory per model: the same
checkpoint bytes under different preprocessing give different logits):

- ``<images sha256[:16]>.npy``: float32 (S, N, C) logits of one stored set, keyed by its images hash, so
  any run of the model on the same set reuses them whatever the set or model is called;
- ``<images sha256[:16]>.<array>.npy``: byte copies of the set's label arrays (``labels``, and
  ``shape_label``/``texture_label`` for cue-conflict, ``source_index`` for a gated set), whose file hashes
  equal the set manifest's; an entry is self-contained, so ``rescore`` needs neither the model nor the set store;
- ``adv-<attack>-<settings digest[:16]>.npz``: adversarial logits (n, C) of one attack at one eps, with the
  subset's clean-split ``indices`` and ``labels``.

Every file is written atomically; an entry missing any of its files is a miss. Logits files carry their own
checksum, ``<file>.sha256``: the file's sha256 and the key it was written for (``<model directory>/<images
sha256>``, or the attack settings' digest), written before it. A logits file that does not match its checksum (a
disk error, a copy cut short, an edit), or that sits under another key (files swapped between two sets of the
same size, a model directory copied under another model's name) is *damaged*. ``score`` warns and recomputes a
damaged entry; ``rescore``, which has no model, refuses it (:class:`DamagedCacheEntry`). Label arrays are
checked against the hashes in the run record instead.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from libkd_bench.core.atomic_io import ensure_writable_dir, write_bytes_atomic
from libkd_bench.core.errors import BenchError, BenchWarning
from libkd_bench.core.provenance import sha256_file, sha256_json

CACHE_DIR = "cache"
KEY_DIGITS = 16
CHECKSUM_SUFFIX = ".sha256"
LABEL_ARRAYS = ("labels", "shape_label", "texture_label", "source_index")


class DamagedCacheEntry(BenchError):
    """A cached logits file that does not match its checksum (or has none)."""


Loaded = TypeVar("Loaded")


def read_unless_damaged(load: Callable[..., Loaded], *args: Any) -> Loaded | None:
    """``load(*args)``, a cache read, where a damaged entry counts as a miss with a warning: the caller
    recomputes it and rewrites it."""
    try:
        return load(*args)
    except DamagedCacheEntry as exc:
        warnings.warn(f"{exc}; recomputing it", BenchWarning, stacklevel=2)
        return None


class LogitsCache:
    """The cache directory of one model (checkpoint and spec) under one results directory."""

    def __init__(self, results: Path, relative: Path) -> None:
        self.results = Path(results)
        self.relative = Path(relative)

    @classmethod
    def for_model(cls, results: Path, checkpoint_sha256: str, spec: Mapping[str, Any]) -> LogitsCache:
        name = f"{checkpoint_sha256[:KEY_DIGITS]}-{sha256_json(dict(spec))[:8]}"
        return cls(results, Path(CACHE_DIR) / name)

    @property
    def directory(self) -> Path:
        return self.results / self.relative

    def logits_path(self, images_sha256: str) -> Path:
        return self.directory / f"{images_sha256[:KEY_DIGITS]}.npy"

    def label_path(self, images_sha256: str, array: str) -> Path:
        return self.directory / f"{images_sha256[:KEY_DIGITS]}.{array}.npy"

    def load_set(self, images_sha256: str, levels: int, n: int) -> np.ndarray | None:
        """Cached (S, N, C) float32 logits of a set, or None when absent or not of that shape.

        Raises:
            DamagedCacheEntry: the file is there but does not match its checksum.
        """
        path = self.logits_path(images_sha256)
        if not path.is_file():
            return None
        try:
            logits = np.load(io.BytesIO(_verified_bytes(path, self._key(images_sha256))), allow_pickle=False)
        except (OSError, ValueError):
            return None
        if logits.ndim != 3 or logits.shape[:2] != (levels, n) or logits.dtype != np.float32:
            return None
        return logits

    def save_set(
        self, images_sha256: str, logits: np.ndarray, label_files: Mapping[str, Path], what: str = "a set"
    ) -> None:
        """Store a set's logits and byte copies of its label files (``{"labels": path, ...}``).

        Raises:
            NonFiniteLogits: some logits are inf or NaN (``what`` names the set in the message).
        """
        require_finite(logits, what)
        ensure_writable_dir(self.directory)
        for array, source in label_files.items():
            write_bytes_atomic(self.label_path(images_sha256, array), Path(source).read_bytes())
        data = _npy_bytes(np.asarray(logits, dtype=np.float32))
        _write_with_checksum(self.logits_path(images_sha256), data, self._key(images_sha256))

    def has_labels(self, images_sha256: str, label_hashes: Mapping[str, str]) -> bool:
        """True when every label array is cached with the expected file hash."""
        paths = {array: self.label_path(images_sha256, array) for array in label_hashes}
        return all(p.is_file() and sha256_file(p) == label_hashes[a] for a, p in paths.items())

    def load_labels(self, images_sha256: str, label_hashes: Mapping[str, str]) -> dict[str, np.ndarray]:
        """The cached label arrays, each checked against its recorded file hash; BenchError when one is off."""
        arrays = {}
        for array, expected in label_hashes.items():
            path = self.label_path(images_sha256, array)
            data = path.read_bytes() if path.is_file() else b""
            if hashlib.sha256(data).hexdigest() != expected:
                raise BenchError(f"logits cache {path} is missing or does not match its run record; re-run score")
            arrays[array] = np.load(io.BytesIO(data), allow_pickle=False)  # one read serves hash and load
        return arrays

    def adversarial_path(self, attack: str, key: str) -> Path:
        return self.directory / f"adv-{attack}-{key[:KEY_DIGITS]}.npz"

    def load_adversarial(
        self, attack: str, key: str, indices: np.ndarray | None = None
    ) -> dict[str, np.ndarray] | None:
        """Cached ``{"logits", "indices", "labels"}`` of one attack setting, or None (also when indices differ).

        Raises:
            DamagedCacheEntry: the file is there but does not match its checksum.
        """
        path = self.adversarial_path(attack, key)
        if not path.is_file():
            return None
        try:
            with np.load(io.BytesIO(_verified_bytes(path, self._key(key))), allow_pickle=False) as data:
                entry = {name: data[name] for name in ("logits", "indices", "labels")}
        except (OSError, ValueError, KeyError):
            return None
        if indices is not None and not np.array_equal(entry["indices"], indices):
            return None
        return entry

    def save_adversarial(
        self, attack: str, key: str, logits: np.ndarray, indices: np.ndarray, labels: np.ndarray
    ) -> str:
        """Store one attack setting's logits; returns the file name (relative to the cache directory).

        Raises:
            NonFiniteLogits: some logits are inf or NaN.
        """
        require_finite(logits, f"the {attack} attack")
        buffer = io.BytesIO()
        np.savez(buffer, logits=np.asarray(logits, dtype=np.float32), indices=indices, labels=labels)
        path = self.adversarial_path(attack, key)
        _write_with_checksum(path, buffer.getvalue(), self._key(key))
        return path.name

    def _key(self, content: str) -> str:
        """What an entry is the logits of: this model directory's name and the full content hash or digest."""
        return f"{self.relative.name}/{content}"


class NonFiniteLogits(BenchError):
    """Logits with inf or NaN: every accuracy computed from them would be wrong."""


def require_finite(logits: np.ndarray, what: str) -> None:
    """Refuse logits that are not all finite, naming how many images of ``what`` they spoil and what to check."""
    finite = np.isfinite(np.asarray(logits)).all(axis=-1)
    if finite.all():
        return
    raise NonFiniteLogits(
        f"the model's logits are inf or NaN on {int(finite.size - finite.sum())} of {finite.size} images of {what}: "
        "its weights overflow on real inputs (or the preprocessing is wrong); check the checkpoint with "
        "libkd-bench inspect and its --mean/--std"
    )


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _write_with_checksum(path: Path, data: bytes, key: str) -> None:
    # the checksum goes first: a crash between the two writes leaves a stale checksum, never an unverified file
    write_bytes_atomic(checksum_path(path), f"{hashlib.sha256(data).hexdigest()} {key}\n".encode())
    write_bytes_atomic(path, data)


def _verified_bytes(path: Path, key: str) -> bytes:
    """The bytes of ``path`` when they match its checksum file and were written for ``key`` (one read serves hash
    and load); DamagedCacheEntry otherwise."""
    try:
        fields = checksum_path(path).read_text().split()
    except (FileNotFoundError, UnicodeDecodeError):
        fields = []
    if not fields:
        raise DamagedCacheEntry(f"logits cache entry {path} is damaged: its checksum file is missing")
    if fields[1:] != [key]:
        raise DamagedCacheEntry(f"logits cache entry {path} was not written for this model and set (key {key})")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != fields[0]:
        raise DamagedCacheEntry(f"logits cache entry {path} is damaged: it does not match its checksum")
    return data


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
