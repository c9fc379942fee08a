"""CIFAR-10G: hand-drawn silhouettes, contours and line drawings of the ten CIFAR-10 classes (Evans et al. 2022).

An external reference for the shape sets: the images are made by hand, not derived from the clean split, so
they answer "does the model recognise an outline?" without any mask of ours in between. The data is licensed
CC BY-NC-SA 4.0 (c) 2021 Benjamin D. Evans, which differs from the project's licence, so it is never copied
into the project: it is read from a local copy named by ``LIBKD_BENCH_CIFAR10G`` (the repository root, the
folder holding ``224x224/``) or, without one, downloaded at run time from the pinned commit's raw URLs into
the data cache. Every file, local or downloaded, must match the pinned sha256 table
(:mod:`libkd_bench.datasets_gen.cifar10g_files`), so every store holds the same images.

Images are 224x224 greyscale PNGs (some 1-bit); they are reduced to 32x32 by area averaging (the mean of each
7x7 block, rounded to the nearest integer, as OpenCV's ``INTER_AREA`` does for a whole-number factor), which is
how a photograph the size of the drawing would look at CIFAR resolution, and the grey level is repeated in the
three channels. Labels come from the class folder names; images are ordered by class (CIFAR-10 order), then by
file number.
"""

from __future__ import annotations

import enum
import hashlib
import io
import os
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libkd_bench.core.atomic_io import ensure_writable_dir, write_bytes_atomic
from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.cifar10g_files import FILE_SHA256
from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES, IMAGE_SHAPE
from libkd_bench.datasets_gen.sources import default_data_root

REPOSITORY = "bdevans/CIFAR-10G"
COMMIT = "bb79dfbb488f13461b169b0fe549bcedd296bb60"
RAW_BASE_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}"
COPY_ENV = "LIBKD_BENCH_CIFAR10G"
IMAGE_DIR = "224x224"
SOURCE_SIZE = 224
IMAGES_PER_CLASS = 10
LICENCE = "CC BY-NC-SA 4.0"
DOI = "10.5281/zenodo.5648918"
CITATION = (
    "CIFAR-10G (c) 2021 Benjamin D. Evans, doi:10.5281/zenodo.5648918; Evans, Malhotra & Bowers, Biological "
    "convolutions improve DNN robustness to noise and generalisation, Neural Networks 148:96-110 (2022)"
)
REDUCTION = (
    "area averaging 224x224 -> 32x32: mean of each 7x7 block rounded to the nearest integer (OpenCV INTER_AREA), "
    "grey repeated in R, G, B"
)
DOWNLOAD_TIMEOUT_S = 60.0

Opener = Callable[[str], bytes]


class Kind(str, enum.Enum):
    """The three kinds of drawing, by their set-name spelling."""

    SILHOUETTES = "silhouettes"
    CONTOURS = "contours"
    LINE_DRAWINGS = "line-drawings"


class Polarity(str, enum.Enum):
    """Light drawing on black (the repository's ``_inverted`` folders, like a lit object) or dark on white."""

    LIGHT_ON_DARK = "light-on-dark"
    DARK_ON_LIGHT = "dark-on-light"


def kind_folder(kind: Kind | str, polarity: Polarity | str) -> str:
    """The repository folder of a kind and polarity, e.g. ``silhouettes_inverted``."""
    folder = Kind(kind).value.replace("-", "_")
    return f"{folder}_inverted" if Polarity(polarity) is Polarity.LIGHT_ON_DARK else folder


def image_files(folder: str) -> list[str]:
    """Paths under ``224x224/`` of the folder's images, by class (CIFAR-10 order) then file number."""
    files = [path for path in FILE_SHA256 if path.split("/")[0] == folder]
    return sorted(files, key=lambda path: (CIFAR10_CLASSES.index(path.split("/")[1]), path))


def label_of(path: str) -> int:
    """The CIFAR-10 label named by the class folder of ``kind/class/file.png``."""
    return CIFAR10_CLASSES.index(path.split("/")[1])


@dataclass(frozen=True)
class CopyLocation:
    """Where the images are read from.

    Attributes:
        root: the repository root, holding ``224x224/``.
        download: True for the data cache, filled from the pinned commit when a file is absent; False for a
            user's copy (``LIBKD_BENCH_CIFAR10G``), which is only read.
    """

    root: Path
    download: bool

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CopyLocation:
        """``$LIBKD_BENCH_CIFAR10G`` when set, else ``<data cache>/cifar10g-<commit[:12]>``, filled by download."""
        environ = os.environ if environ is None else environ
        local = environ.get(COPY_ENV)
        if local:
            return cls(Path(local), download=False)
        return cls(default_data_root() / f"cifar10g-{COMMIT[:12]}", download=True)


def fetch_url(url: str) -> bytes:
    """The body of ``url`` (http(s) or file), read within the download timeout."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def read_verified_files(
    files: Sequence[str], location: CopyLocation, opener: Opener | None = None, base_url: str | None = None
) -> list[bytes]:
    """The bytes of each file under ``224x224/``, each checked against its pinned sha256.

    A file absent from a download location is fetched from ``base_url`` (default :data:`RAW_BASE_URL`) with
    ``opener`` (default :func:`fetch_url`) and written to the cache only once its hash is right, so the cache
    never holds a wrong file.

    Raises:
        BenchError: one line naming the missing, undownloadable or altered file and the fix.
    """
    images_dir = location.root / IMAGE_DIR
    if not location.download and not images_dir.is_dir():
        raise BenchError(
            f"{COPY_ENV}={location.root} holds no {IMAGE_DIR}/ folder; point it at a copy of github.com/"
            f"{REPOSITORY} at commit {COMMIT} (the repository root), or unset it to download the images"
        )
    contents = []
    for relative in files:
        path = images_dir / relative
        if path.is_file():
            data = path.read_bytes()
        elif location.download:
            data = _download(relative, path, opener or fetch_url, base_url or RAW_BASE_URL)
        else:
            raise BenchError(
                f"CIFAR-10G file {path} is missing; {COPY_ENV} must name a complete copy of github.com/{REPOSITORY} "
                f"at commit {COMMIT}"
            )
        if hashlib.sha256(data).hexdigest() != FILE_SHA256[relative]:
            fix = "delete it to download it again" if location.download and path.is_file() else "restore it"
            raise BenchError(
                f"CIFAR-10G file {path} does not match its pinned sha256 (altered, or another version); {fix} "
                f"from github.com/{REPOSITORY} at commit {COMMIT}"
            )
        contents.append(data)
    return contents


def _download(relative: str, path: Path, opener: Opener, base_url: str) -> bytes:
    url = f"{base_url}/{IMAGE_DIR}/{relative}"
    try:
        data = opener(url)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, refused connection, unknown URL type
        reason = getattr(exc, "reason", None) or exc
        raise BenchError(
            f"CIFAR-10G file {relative} could not be downloaded from {url} ({reason}); offline, clone "
            f"github.com/{REPOSITORY} at commit {COMMIT} and set {COPY_ENV} to its root (the folder holding "
            f"{IMAGE_DIR}/)"
        ) from None
    if hashlib.sha256(data).hexdigest() == FILE_SHA256[relative]:
        ensure_writable_dir(path.parent)
        write_bytes_atomic(path, data)
    return data


def decode_grey(data: bytes, name: str) -> np.ndarray:
    """uint8 (224, 224) grey levels of a PNG (1-bit images become 0/255)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        grey = np.asarray(image.convert("L"), dtype=np.uint8)
    if grey.shape != (SOURCE_SIZE, SOURCE_SIZE):
        raise BenchError(f"CIFAR-10G file {name} is {grey.shape}, expected {SOURCE_SIZE}x{SOURCE_SIZE}")
    return grey


def area_average(grey: np.ndarray, size: int = IMAGE_SHAPE[0]) -> np.ndarray:
    """uint8 (size, size): the mean of each block of an (H, W) image whose sides are multiples of ``size``.

    Rounds half up; for the 7x7 blocks of 224 -> 32 no mean lies halfway (49 is odd), so this equals OpenCV's
    ``INTER_AREA`` exactly.
    """
    height, width = grey.shape
    if height % size or width % size:
        raise ValueError(f"image {grey.shape} is not a whole multiple of {size}")
    blocks = grey.reshape(size, height // size, size, width // size).astype(np.int64)
    sums = blocks.sum(axis=(1, 3))
    area = (height // size) * (width // size)
    return ((2 * sums + area) // (2 * area)).astype(np.uint8)


def load_cifar10g(
    kind: Kind | str,
    polarity: Polarity | str = Polarity.LIGHT_ON_DARK,
    location: CopyLocation | None = None,
    opener: Opener | None = None,
    base_url: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (100, 32, 32, 3) and labels int64 (100,) of one kind, 10 per class in CIFAR-10 order.

    Args:
        kind: silhouettes, contours or line-drawings.
        polarity: light-on-dark (the ``_inverted`` folders) or dark-on-light.
        location: where to read (default: :meth:`CopyLocation.from_environment`).
        opener: ``url -> bytes`` used for downloads (default :func:`fetch_url`).
        base_url: the repository at the pinned commit, as raw file URLs (default :data:`RAW_BASE_URL`).
    """
    files = image_files(kind_folder(kind, polarity))
    labels = np.array([label_of(path) for path in files], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(CIFAR10_CLASSES))
    if not (counts == IMAGES_PER_CLASS).all():
        raise RuntimeError(f"the pinned CIFAR-10G table lists {counts.tolist()} images per class")
    contents = read_verified_files(files, location or CopyLocation.from_environment(), opener, base_url)
    grey = np.stack([area_average(decode_grey(data, path)) for data, path in zip(contents, files, strict=True)])
    images = np.repeat(grey[..., None], IMAGE_SHAPE[2], axis=-1)
    return np.ascontiguousarray(images), labels


def source_identity(kind: Kind | str, polarity: Polarity | str) -> dict[str, object]:
    """What a CIFAR-10G set is made from, for its manifest and run records: repository, commit, folder, the
    digest of the pinned hashes of its files, licence, citation and the reduction method."""
    folder = kind_folder(kind, polarity)
    pinned = "".join(f"{path} {FILE_SHA256[path]}\n" for path in image_files(folder))
    return {
        "name": "CIFAR-10G",
        "repository": f"https://github.com/{REPOSITORY}",
        "commit": COMMIT,
        "folder": f"{IMAGE_DIR}/{folder}",
        "files_sha256": hashlib.sha256(pinned.encode()).hexdigest(),
        "licence": LICENCE,
        "citation": CITATION,
        "doi": DOI,
        "reduction": REDUCTION,
        "paired_with_clean": False,
    }
