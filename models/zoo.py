"""``zoo:NAME``: public CIFAR-10 checkpoints by name, each pinned to a URL and the sha256 of its bytes.

A file is looked for, in order, in the local mirror ``$LIBKD_BENCH_ZOO_DIR`` (for machines without internet:
a folder holding the files under their original names), then in the download cache
``$LIBKD_BENCH_ZOO_CACHE`` (default ``~/.cache/libkd-bench/zoo``), and is otherwise downloaded once into the
cache. Its hash is verified every time; a file whose bytes differ from the pinned hash is refused wherever it
was found, so a zoo name always means the same weights.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from bench.atomic_io import write_bytes_atomic
from bench.errors import BenchError, unknown_name_message
from bench.provenance import sha256_file
from models.spec import Preset, SpecOverrides

PREFIX = "zoo:"
MIRROR_ENV = "LIBKD_BENCH_ZOO_DIR"
CACHE_ENV = "LIBKD_BENCH_ZOO_CACHE"
DOWNLOAD_TIMEOUT_S = 30
_CHUNK = 1 << 20
_AKAMASTER = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models"


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint: where it lives, its bytes' hash, and how to run it."""

    name: str
    url: str
    sha256: str
    spec: SpecOverrides
    description: str

    @property
    def filename(self) -> str:
        return PurePosixPath(urlparse(self.url).path).name


def _akamaster(depth: int, file_hash: str, sha256: str, best_prec1: float) -> ZooEntry:
    return ZooEntry(
        name=f"akamaster-resnet{depth}",
        url=f"{_AKAMASTER}/resnet{depth}-{file_hash}.th",
        sha256=sha256,
        spec=SpecOverrides(arch=f"resnet{depth}_a", num_classes=10, preset=Preset.IMAGENET),
        description=f"ResNet-{depth} (option A) by Yerlan Idelbayev, BSD-2-Clause; {best_prec1}% on CIFAR-10 test",
    )


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        _akamaster(20, "12fca82f", "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8", 91.78),
        _akamaster(32, "d509ac18", "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850", 92.78),
        _akamaster(44, "014dd654", "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4", 93.14),
        _akamaster(56, "4bfd9763", "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367", 93.62),
    )
}


def is_zoo_reference(checkpoint: str | os.PathLike[str]) -> bool:
    return isinstance(checkpoint, str) and checkpoint.startswith(PREFIX)


def zoo_entry(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        raise BenchError(unknown_name_message("zoo checkpoint", name, ZOO)) from None


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "libkd-bench" / "zoo"


def _verified(entry: ZooEntry, path: Path, where: str) -> Path:
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise BenchError(
            f"zoo:{entry.name}: {path} ({where}) has sha256 {actual[:16]}..., not the pinned {entry.sha256[:16]}...; "
            "it is a different or damaged file: replace it with the original"
        )
    return path


def _download(entry: ZooEntry, target: Path) -> Path:
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(entry.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            chunks = []
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"zoo:{entry.name}", disable=None) as bar:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    chunks.append(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BenchError(
            f"zoo:{entry.name}: cannot download {entry.url} ({reason}); offline? put {entry.filename} in a folder "
            f"and set {MIRROR_ENV} to it"
        ) from None
    data = b"".join(chunks)
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise BenchError(f"zoo:{entry.name}: the file at {entry.url} no longer has the pinned sha256; not using it")
    write_bytes_atomic(target, data)
    return target


def fetch(name: str) -> Path:
    """The verified local file of zoo checkpoint ``name``: from the mirror, the cache, or downloaded once."""
    entry = zoo_entry(name)
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and (Path(mirror) / entry.filename).is_file():
        return _verified(entry, Path(mirror) / entry.filename, f"in {MIRROR_ENV}")
    cached = cache_dir() / entry.filename
    if cached.is_file():
        return _verified(entry, cached, "in the zoo cache")
    return _download(entry, cached)
