"""Where the clean test split comes from: ``cifar10``, ``npz:PATH`` or ``folder:PATH``.

Every source yields uint8 images (N,32,32,3), int64 labels in CIFAR-10 order, and a content-hash id, so
results computed on different data never mix.
"""

from __future__ import annotations

import enum
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.core.locations import as_given
from libkd_bench.core.provenance import sha256_array
from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES, IMAGE_SHAPE, NUM_CLASSES

DATA_ENV = "LIBKD_BENCH_DATA"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class SourceKind(str, enum.Enum):
    CIFAR10 = "cifar10"
    NPZ = "npz"
    FOLDER = "folder"


@dataclass(frozen=True)
class SourceInfo:
    """What the clean split is: its kind, where it was read, its content hash and size."""

    kind: SourceKind
    location: str
    sha256: str
    n: int
    limit: int | None = None

    @property
    def id(self) -> str:
        """Short stable name of the content: ``<kind>-<first 16 hex digits of its hash>``."""
        return f"{self.kind.value}-{self.sha256[:16]}"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "location": self.location,
            "sha256": self.sha256,
            "n": self.n,
            "limit": self.limit,
        }


@dataclass(frozen=True)
class Split:
    """The clean test split: images (N,32,32,3) uint8, labels (N,) int64, and where they came from."""

    images: np.ndarray
    labels: np.ndarray
    info: SourceInfo


def default_data_root() -> Path:
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else Path.home() / ".cache" / "libkd-bench" / "data"


def parse_source(spec: str) -> tuple[SourceKind, Path | None]:
    kind_text, _, location = spec.partition(":")
    try:
        kind = SourceKind(kind_text)
    except ValueError:
        raise BenchError(f"unknown source {spec!r}; use cifar10, npz:PATH or folder:PATH") from None
    if kind is SourceKind.CIFAR10:
        return kind, None
    if not location:
        raise BenchError(f"source {spec!r} needs a path, e.g. {kind.value}:/path/to/data")
    return kind, Path(location).expanduser()


def load_source(spec: str = "cifar10", data_root: Path | None = None, limit: int | None = None) -> Split:
    """Read the clean split named by ``spec``; ``limit`` keeps a class-balanced subset (see ``balanced_subset``)."""
    kind, location = parse_source(spec)
    if kind is SourceKind.CIFAR10:
        from libkd_bench.datasets_gen.cifar10 import load_test_split

        root = data_root or default_data_root()
        images, labels = load_test_split(root)
        where = as_given(root)
    elif kind is SourceKind.NPZ:
        images, labels = _read_npz(location)
        where = as_given(location)
    else:
        images, labels = _read_folder(location)
        where = as_given(location)
    _check_split(images, labels, spec)
    if limit is not None:
        if limit <= 0:
            raise BenchError(f"--limit must be positive, got {limit}")
        keep = balanced_subset(labels, limit)
        images, labels = images[keep], labels[keep]
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    info = SourceInfo(kind, where, split_sha256(images, labels), len(labels), limit)
    return Split(images, labels, info)


def split_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """Content hash of a split: the hashes of its images and labels, hashed together."""
    import hashlib

    return hashlib.sha256((sha256_array(images) + sha256_array(labels)).encode()).hexdigest()


def balanced_subset(labels: np.ndarray, limit: int) -> np.ndarray:
    """Indices (ascending) of the first ``limit`` images taken round-robin over classes, in source order.

    A sorted-by-class source and the official shuffled split both give a class-balanced subset, and a
    smaller limit is always a subset of a larger one.
    """
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank_in_class = np.arange(len(labels)) - starts
    round_robin = order[np.lexsort((sorted_labels, rank_in_class))]
    return np.sort(round_robin[:limit])


def _check_split(images: np.ndarray, labels: np.ndarray, spec: str) -> None:
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise BenchError(f"source {spec}: images must be uint8 (N,32,32,3), got {images.dtype} {images.shape}")
    if labels.shape != (len(images),):
        raise BenchError(f"source {spec}: {len(images)} images but labels of shape {labels.shape}")
    if len(labels) == 0:
        raise BenchError(f"source {spec} holds no images")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise BenchError(f"source {spec}: labels must be integers 0..{NUM_CLASSES - 1} in CIFAR-10 class order")


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise BenchError(f"npz source {path} does not exist; pass an existing .npz with arrays x and y")
    try:
        with open(path, "rb") as handle:
            data = np.load(handle, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise BenchError(
                    f"npz source {path} holds a single array, not an .npz archive; save the split with "
                    "numpy.savez(path, x=images, y=labels)"
                )
            with data:
                missing = {"x", "y"} - set(data.files)
                if missing:
                    raise BenchError(f"npz source {path} lacks array(s) {', '.join(sorted(missing))}; it needs x and y")
                return data["x"], data["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BenchError(f"npz source {path} cannot be read ({exc}); pass a valid .npz with arrays x and y") from None


def _read_folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise BenchError(f"folder source {root} is not a directory; pass a folder of <class>/<image> files")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs if p.name not in CIFAR10_CLASSES]
    if unknown:
        raise BenchError(
            f"folder source {root}: {unknown[0]!r} is not a CIFAR-10 class; use {', '.join(CIFAR10_CLASSES)}"
        )
    images, labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        folder = root / name
        if not folder.is_dir():
            continue
        for file in sorted(f for f in folder.iterdir() if f.is_file()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                raise BenchError(f"folder source: {file} is not an image file ({', '.join(IMAGE_SUFFIXES)})")
            try:
                with Image.open(file) as image:
                    image.load()
                    if image.mode != "RGB" or image.size != (32, 32):
                        raise BenchError(
                            f"folder source: {file} is {image.mode} {image.size[0]}x{image.size[1]}; "
                            "only 32x32 RGB images are accepted"
                        )
                    images.append(np.asarray(image, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as exc:
                raise BenchError(f"folder source: {file} cannot be decoded ({exc})") from None
            labels.append(label)
    if not images:
        raise BenchError(f"folder source {root} holds no images; expected <class>/<image> files")
    return np.stack(images), np.asarray(labels, dtype=np.int64)
