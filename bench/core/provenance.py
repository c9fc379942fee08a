"""What a result was computed from: content hashes and library versions.

Versions come from package metadata, so recording them never imports torch or OpenCV.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import libkd_bench

TRACKED_DISTRIBUTIONS = (
    "numpy",
    "torch",
    "torchvision",
    "timm",
    "scikit-image",
    "opencv-python-headless",
    "torchattacks",
)
_CHUNK = 1 << 24


def library_versions() -> dict[str, str]:
    """Versions of the suite, Python and every library that can change a result."""
    versions = {"libkd-bench": libkd_bench.__version__, "python": platform.python_version()}
    for name in TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def sha256_array(array: np.ndarray) -> str:
    """Hash of an array's dtype, shape and bytes (C order); a memory map is read in chunks."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    for start in range(0, flat.size, _CHUNK):
        digest.update(flat[start : start + _CHUNK])
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hash of a JSON-serialisable value (keys sorted, non-JSON leaves as their ``str``): the identity of settings."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
