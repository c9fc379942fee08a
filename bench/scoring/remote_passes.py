"""Forward passes and attacks of a ``score`` call fanned out as executor units, one per (model, set) or
(model, attack, eps).

Only the logits are computed remotely. A unit carries how to load its model (a picklable loader, not the
module) and the path of the images it reads, so every worker must see the set store at the same path; the
logits come back to the driver, which writes them into the logits cache exactly as a local run does. The
records are then built by :func:`libkd_bench.scoring.run.score_model` from that cache, in the driver, so the
metrics and their seeded bootstrap intervals equal a local run's to the last digit.

A worker keeps the last model it loaded, so the units of one checkpoint that land on the same worker load it
once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from libkd_bench.core.errors import BenchWarning
from libkd_bench.core.executor import Executor, Resources
from libkd_bench.core.progress import progress_bar
from libkd_bench.scoring.adversarial import attack_logits
from libkd_bench.scoring.adversarial_settings import AdversarialConfig, AttackName, adversarial_subset
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine
from libkd_bench.scoring.logits_cache import DamagedCacheEntry, LogitsCache
from libkd_bench.scoring.sets import ScoringSets
from libkd_bench.scoring.stored_outcomes import adversarial_entry, adversarial_key, label_files, stored_set_entry

if TYPE_CHECKING:
    from libkd_bench.models import LoadedModel
    from libkd_bench.scoring.run import ScoreOptions


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker gets one model of the call.

    Attributes:
        key: identifies the model (its logits-cache directory: checkpoint hash and spec), to reuse a loaded one.
        load: loads the model on the worker; must pickle (a module-level function or a ``functools.partial``
            of one) and must not depend on the driver's working directory (absolute paths).
    """

    key: str
    load: Callable[[], LoadedModel]


@dataclass(frozen=True)
class SetPass:
    """Logits (S, N, C) of one stored set: the images file, memory-mapped on the worker."""

    model: ModelRecipe
    engine: EngineConfig
    set_name: str
    images: Path
    images_sha256: str
    size: int  # images over every level


@dataclass(frozen=True)
class AttackPass:
    """Logits (n, C) of one attack at one eps on the fixed subset ``indices`` of the clean split."""

    model: ModelRecipe
    engine: EngineConfig
    attack: AttackName
    eps: float
    config: AdversarialConfig
    clean_images: Path
    indices: np.ndarray
    labels: np.ndarray
    cache_key: str


Pass = SetPass | AttackPass


@dataclass(frozen=True)
class RemoteModel:
    """A model of the call: as the driver loaded it (for its cache key), and how its workers load it."""

    loaded: LoadedModel
    load: Callable[[], LoadedModel]


def remote_forward_passes(
    executor: Executor, models: Sequence[RemoteModel], sets: ScoringSets, results: Path, options: ScoreOptions
) -> list[frozenset[str]]:
    """Compute every set's and attack's logits missing from the cache, on ``executor``, and cache them.

    All models' units go out together, so a call with many checkpoints fills the cluster. Afterwards
    ``score_model`` finds every logits array in the cache; it is told which sets had their forward pass here
    (the record's ``scoring.forward_passes``).

    Returns:
        Per model, the names of the stored sets whose forward pass ran in this call.
    """
    units: list[Pass] = []
    caches: dict[str, LogitsCache] = {}
    keys = []
    for model in models:
        cache = LogitsCache.for_model(results, model.loaded.checkpoint.sha256, model.loaded.spec.to_json())
        key = cache.relative.as_posix()
        keys.append(key)
        if key not in caches:  # the same checkpoint and spec twice: computed once
            caches[key] = cache
            units.extend(_missing_passes(ModelRecipe(key, model.load), cache, sets, options))
    computed: dict[str, set[str]] = {key: set() for key in caches}
    resources = Resources(cpus=1.0, gpus=1.0 if torch.device(options.engine.device).type == "cuda" else 0.0)
    total = sum(_images(unit) for unit in units)
    desc = f"{len(units)} forward passes and attacks"
    with progress_bar(total, desc, enabled=options.progress) as bar:
        for unit, logits in executor.map_unordered(run_pass, units, resources):
            cache = caches[unit.model.key]
            if isinstance(unit, SetPass):
                stored = sets.sets[unit.set_name]
                cache.save_set(unit.images_sha256, logits, label_files(stored))
                computed[unit.model.key].add(unit.set_name)
            else:
                cache.save_adversarial(unit.attack.value, unit.cache_key, logits, unit.indices, unit.labels)
            bar.update(_images(unit))
    return [frozenset(computed[key]) for key in keys]


def _images(unit: Pass) -> int:
    """Images a unit runs through the model: every level of a set, or the attacked subset."""
    if isinstance(unit, SetPass):
        return unit.size
    return len(unit.indices)


def _missing_passes(recipe: ModelRecipe, cache: LogitsCache, sets: ScoringSets, options: ScoreOptions) -> list[Pass]:
    """The units whose logits a local run would compute: every one with ``recompute``, else the cache misses."""
    units: list[Pass] = []
    for name, stored in sets.sets.items():
        sha = stored_set_entry(stored)["sha256"]
        levels, n = stored.images.shape[:2]
        if options.recompute or _cached(cache.load_set, sha, levels, n) is None:
            images = Path(stored.path, stored.manifest.arrays["images"].file).resolve()
            units.append(SetPass(recipe, options.engine, name, images, sha, int(levels * n)))
    config = options.adversarial
    if not config.attacks:
        return units
    clean = sets.clean
    indices = adversarial_subset(clean.labels, config.n, config.seed)
    labels = np.asarray(clean.labels[indices])
    clean_images = Path(clean.path, clean.manifest.arrays["images"].file).resolve()
    for attack in config.attacks:
        entry = adversarial_entry(
            config.settings(attack), config.eps, clean.sha256("images"), indices, options.engine.batch
        )
        for eps in config.eps:
            key = adversarial_key(entry, eps)
            if options.recompute or _cached(cache.load_adversarial, attack.value, key, indices) is None:
                units.append(
                    AttackPass(recipe, options.engine, attack, eps, config, clean_images, indices, labels, key)
                )
    return units


def _cached(load: Callable[..., object], *args: Any) -> object | None:
    """A cache read where a damaged entry is a miss, with the warning a local run gives; the unit rewrites it."""
    try:
        return load(*args)
    except DamagedCacheEntry as exc:
        warnings.warn(f"{exc}; recomputing it", BenchWarning, stacklevel=2)
        return None


_loaded: dict[str, LoadedModel] = {}  # the last model this worker process loaded, by recipe key


def run_pass(unit: Pass) -> np.ndarray:
    """The logits of one unit (runs on a worker): float32 (S, N, C) for a set, (n, C) for an attack."""
    loaded = _loaded.get(unit.model.key)
    if loaded is None:
        _loaded.clear()
        loaded = _loaded[unit.model.key] = unit.model.load()
    engine = ForwardEngine(loaded.module, unit.engine)
    if isinstance(unit, SetPass):
        return engine.set_logits(np.load(unit.images, mmap_mode="r"))
    clean = np.load(unit.clean_images, mmap_mode="r")[0]
    images = np.asarray(clean[unit.indices])
    num_classes = int(loaded.spec.num_classes)
    return attack_logits(engine, images, unit.labels, unit.attack, unit.eps, unit.config, num_classes)
