"""Labelled CIFAR-sized image arrays for training and for the final clean accuracy.

Accepted references: ``npz:PATH`` or a path to an ``.npz`` holding ``x`` uint8 (N, 32, 32, 3) and ``y``; or a
path to a JPEG archive (``jpeg`` bytes, ``offsets`` (N+1,), ``y``), the form the CIFAR-10 train split is shared
in. A JPEG archive is decoded once (about 20 s for 50,000 images) and cached as ``.npy`` under
``$LIBKD_BENCH_TRAIN_CACHE`` (default ``~/.cache/libkd-bench/train``), named by the archive's hash, so later
runs memory-map it.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libkd_bench.core.atomic_io import write_bytes_atomic
from libkd_bench.core.errors import BenchError
from libkd_bench.core.provenance import sha256_file

NPZ_PREFIX = "npz:"
CACHE_ENV = "LIBKD_BENCH_TRAIN_CACHE"
IMAGE_SHAPE = (32, 32, 3)


@dataclass(frozen=True)
class ImageSplit:
    """Images and labels of one split.

    Attributes:
        images: uint8 (N, 32, 32, 3), RGB; possibly a read-only memory map.
        labels: int64 (N,), class indices.
        source: the reference the split was read from.
        sha256: hash of the file it came from, plus the limit when one was applied; identifies the data.
    """

    images: np.ndarray
    labels: np.ndarray
    source: str
    sha256: str

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.shape[1:] != IMAGE_SHAPE:
            raise BenchError(
                f"{self.source}: images must be uint8 (N, 32, 32, 3), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (len(self.images),):
            raise BenchError(f"{self.source}: {len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, limit: int | None) -> ImageSplit:
        """``limit`` evenly spaced images (all when None or larger than the split).

        Even spacing keeps the classes balanced in files sorted by class, as the shared CIFAR-10 copies are.
        """
        if limit is None or limit >= len(self):
            return self
        if limit < 1:
            raise BenchError(f"--limit must be a positive number of images, got {limit}")
        index = np.linspace(0, len(self) - 1, limit).round().astype(np.int64)
        return ImageSplit(self.images[index], self.labels[index], self.source, f"{self.sha256}[subset {limit}]")


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "libkd-bench" / "train"


def _decode_jpegs(jpeg: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    from PIL import Image

    images = np.empty((len(offsets) - 1, *IMAGE_SHAPE), dtype=np.uint8)
    for i in range(len(images)):
        with Image.open(io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes())) as image:
            images[i] = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return images


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomic(path, buffer.getvalue())


def _decoded(path: Path, archive: np.lib.npyio.NpzFile, digest: str) -> tuple[np.ndarray, np.ndarray]:
    """The decoded images of a JPEG archive, from the cache or decoded into it."""
    images_path = cache_dir() / f"{digest[:16]}.npy"
    labels_path = cache_dir() / f"{digest[:16]}.labels.npy"
    if not (images_path.is_file() and labels_path.is_file()):
        _save_npy(images_path, _decode_jpegs(archive["jpeg"], archive["offsets"]))
        _save_npy(labels_path, np.asarray(archive["y"], dtype=np.int64))
    return np.load(images_path, mmap_mode="r"), np.load(labels_path)


def load_split(reference: str | os.PathLike[str], limit: int | None = None) -> ImageSplit:
    """The images and labels of ``reference`` (see the module docstring), the first ``limit`` of them if given."""
    text = os.fspath(reference)
    path = Path(text[len(NPZ_PREFIX) :] if text.startswith(NPZ_PREFIX) else text)
    if not path.is_file():
        raise BenchError(f"training data {path} not found; give --data PATH (a train-jpeg.npz or an npz with x, y)")
    digest = sha256_file(path)
    try:
        with np.load(path) as archive:
            keys = set(archive.files)
            if {"jpeg", "offsets", "y"} <= keys:
                images, labels = _decoded(path, archive, digest)
            elif {"x", "y"} <= keys:
                images, labels = archive["x"], np.asarray(archive["y"], dtype=np.int64)
            else:
                raise BenchError(f"{path} holds {sorted(keys)}; expected x and y, or jpeg, offsets and y")
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BenchError(f"{path} is not a readable .npz archive ({exc}); check the file") from None
    return ImageSplit(images, labels.astype(np.int64, copy=False), text, digest).subset(limit)
