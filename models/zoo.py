"""``zoo:NAME``: public CIFAR-10 checkpoints by name, each pinned to a URL and the sha256 of its bytes.

A file is looked for, in order, in the local mirror ``$LIBKD_BENCH_ZOO_DIR`` (for machines without internet:
a folder holding the files under their original names), then in the download cache
``$LIBKD_BENCH_ZOO_CACHE`` (default ``~/.cache/libkd-bench/zoo``), and is otherwise downloaded once into the
cache. Its hash is verified every time; a file whose bytes differ from the pinned hash is refused wherever it
was found, so a zoo name always means the same weights.

Bundled entries are weights shipped inside the package, under ``models/zoo_weights/`` (the reference models
trained by the project's recipes): no download, the same sha256 check, and metadata naming the recipe, the
KD method, the teacher and the baseline. Add one with :func:`bundled` in :data:`BUNDLED`.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from libkd_bench.core.atomic_io import write_bytes_atomic
from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.core.locations import ZOO_PREFIX
from libkd_bench.core.normalisation import Preset
from libkd_bench.core.provenance import sha256_file
from libkd_bench.models.spec import SpecOverrides

MIRROR_ENV = "LIBKD_BENCH_ZOO_DIR"
CACHE_ENV = "LIBKD_BENCH_ZOO_CACHE"
DOWNLOAD_TIMEOUT_S = 30
_CHUNK = 1 << 20
_AKAMASTER = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models"
BUNDLED_DIR = Path(__file__).resolve().parent / "zoo_weights"


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint: where it lives, its bytes' hash, and how to run it.

    Attributes:
        name: the NAME of ``zoo:NAME``.
        url: where the file is downloaded from; empty for a bundled entry.
        sha256: hex digest of the file's bytes.
        spec: what the entry says about preprocessing and architecture.
        description: one line for ``list-models``.
        bundled: file name under ``models/zoo_weights/`` for weights shipped with the package, else None.
        recipe, method, teacher, baseline: how a bundled model was trained (recipe name, KD method, teacher and
            baseline zoo names), None when unknown or not applicable.
    """

    name: str
    url: str
    sha256: str
    spec: SpecOverrides
    description: str
    bundled: str | None = None
    recipe: str | None = None
    method: str | None = None
    teacher: str | None = None
    baseline: str | None = None

    @property
    def filename(self) -> str:
        return self.bundled or PurePosixPath(urlparse(self.url).path).name


def _akamaster(depth: int, file_hash: str, sha256: str, best_prec1: float) -> ZooEntry:
    return ZooEntry(
        name=f"akamaster-resnet{depth}",
        url=f"{_AKAMASTER}/resnet{depth}-{file_hash}.th",
        sha256=sha256,
        spec=SpecOverrides(arch=f"resnet{depth}_a", num_classes=10, preset=Preset.IMAGENET),
        description=f"ResNet-{depth} (option A) by Yerlan Idelbayev, BSD-2-Clause; {best_prec1}% on CIFAR-10 test",
    )


def bundled(
    name: str,
    file: str,
    sha256: str,
    *,
    spec: SpecOverrides,
    description: str,
    recipe: str | None = None,
    method: str | None = None,
    teacher: str | None = None,
    baseline: str | None = None,
) -> ZooEntry:
    """An entry for ``models/zoo_weights/FILE`` (its sidecar ``FILE.json``, if any, is read as for any file)."""
    return ZooEntry(
        name=name,
        url="",
        sha256=sha256,
        spec=spec,
        description=description,
        bundled=file,
        recipe=recipe,
        method=method,
        teacher=teacher,
        baseline=baseline,
    )


# Weights shipped in models/zoo_weights/, trained by the recipe of the same name (``libkd-bench train NAME``):
# name, sha256 of the file, normalisation, clean accuracy on the class-balanced 2,000-image subset of the shared
# CIFAR-10 JPEG test copy (as measured when exported).
_BUNDLED_TABLE: tuple[tuple[str, str, Preset, float], ...] = (
    ("control-bagnet", "630b3b5effbfd5740fcaa52b83f65c879d718cd682133d8dfa646ac82178ef2d", Preset.CIFAR10, 0.719),
    ("control-colour", "631a521af62d1e9f3d576aa7f37759b2e5f39ced6b4774c0570c8695d6dce659", Preset.NONE, 0.433),
    ("control-shape", "6eeb96f0ead39feb012f7bffd4d7b4cb136371679dbed86d69be89c269c4058e", Preset.CIFAR10, 0.357),
    ("ref-rednet", "5888f524db8baa4ff326a3a3b1f2304b36c4c9aee2d041b810d73aed75c2c819", Preset.CIFAR10, 0.822),
    (
        "ref-resnet20-baseline",
        "46bb2fe50d2eee7b7fae68b54544d6ea459c3c0dbf2e03f9ddaaae8608320fbf",
        Preset.CIFAR10,
        0.871,
    ),
    ("ref-resnet20-kd", "adcb04492fbb48c75405effa4704550148d9296a658ee810f47c3e54acdaf290", Preset.CIFAR10, 0.8495),
    (
        "ref-resnet20-kdlayer",
        "4cbd06193a44ec1ea4babb4746b47f306efef4be9a96b1156d80052a16898095",
        Preset.CIFAR10,
        0.8645,
    ),
    ("ref-vit-baseline", "c6bbb048a3327fe9aa38a2d18da73e4efa453322e2330a332271518d29bdf1f7", Preset.CIFAR10, 0.7815),
    ("ref-vit-disttoken", "98d88a2d6cc604bc3414d826a7f8e28c5109c2665e8320fa1a3be50795e4f7ad", Preset.CIFAR10, 0.785),
    ("ref-vit-kd", "7facf505751574086cdc9e43b314b50443e690ebed9379dd487c7f72a66234b2", Preset.CIFAR10, 0.7845),
    ("ref-vit-libkd", "b3e0483520253f83eefa6422e28a876608d804e3d8a338e1d73b70fdd3612a41", Preset.CIFAR10, 0.7845),
)


def _bundled_entry(name: str, sha256: str, preset: Preset, accuracy: float) -> ZooEntry:
    """A bundled entry whose architecture and training story come from the recipe that made it."""
    from libkd_bench.models.training.recipe import Method, get_recipe

    recipe = get_recipe(name)
    teachers = "+".join(t.split(":", 1)[1] for t in recipe.teachers)
    return bundled(
        name,
        f"{name}.safetensors",
        sha256,
        spec=SpecOverrides(arch=recipe.arch, num_classes=10, preset=preset),
        description=f"{recipe.description}; {100 * accuracy:.1f}% (shared JPEG test, 2k)",
        recipe=name,
        method=None if recipe.method is Method.NONE else recipe.method.value,
        teacher=teachers or None,
        baseline=recipe.baseline,
    )


BUNDLED: tuple[ZooEntry, ...] = tuple(_bundled_entry(*row) for row in _BUNDLED_TABLE)

ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        _akamaster(20, "12fca82f", "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8", 91.78),
        _akamaster(32, "d509ac18", "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850", 92.78),
        _akamaster(44, "014dd654", "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4", 93.14),
        _akamaster(56, "4bfd9763", "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367", 93.62),
        *BUNDLED,
    )
}


def is_zoo_reference(checkpoint: str | os.PathLike[str]) -> bool:
    return isinstance(checkpoint, str) and checkpoint.startswith(ZOO_PREFIX)


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
    if entry.bundled is not None:
        path = BUNDLED_DIR / entry.bundled
        if not path.is_file():
            raise BenchError(f"zoo:{name}: bundled file {path} is missing; reinstall libkd-bench")
        return _verified(entry, path, "bundled with the package")
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and (Path(mirror) / entry.filename).is_file():
        return _verified(entry, Path(mirror) / entry.filename, f"in {MIRROR_ENV}")
    cached = cache_dir() / entry.filename
    if cached.is_file():
        return _verified(entry, cached, "in the zoo cache")
    return _download(entry, cached)
