"""The forward passes and attacks of a ``score`` call: planned once, run as executor units, cached by the driver.

One plan for every executor: :func:`missing_passes` lists, per model, the passes whose logits are not in the
cache (every pass with ``recompute``): one per (model, set), one per (model, attack, eps) on the attacked subset
of the clean split (:func:`attacked_subset`, the one place that subset is drawn). :func:`forward_passes` runs
them as units on an executor (:class:`~libkd_bench.core.executor.LocalExecutor` in this process, or a Ray
cluster) and writes every result into the logits cache itself; the records are then built by
:func:`libkd_bench.scoring.run.score_model` from that cache, in the driver, so the metrics and their seeded
bootstrap intervals do not depend on where the passes ran.

A unit carries, as callables the executor provides (see :meth:`libkd_bench.core.executor.Executor.provide`), how
its worker gets the model and the images: read from the driver's paths (the checkpoint, the set store) or
shipped by the driver; in this process, the driver's own loaded model. A worker keeps the last model it loaded
and its engine, so the units of one model that land on the same worker load it (and time CPU threads) once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from libkd_bench.core.executor import Executor, Resources, WorkerInput, array_file
from libkd_bench.core.progress import progress_bar
from libkd_bench.datasets_gen.store import MANIFEST
from libkd_bench.scoring.adversarial import attack_logits
from libkd_bench.scoring.adversarial_settings import AdversarialConfig, AttackName, adversarial_subset
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine
from libkd_bench.scoring.logits_cache import LogitsCache, read_unless_damaged
from libkd_bench.scoring.sets import ScoringSets
from libkd_bench.scoring.stored_outcomes import adversarial_entry, adversarial_key, label_files

if TYPE_CHECKING:
    from libkd_bench.models import LoadedModel
    from libkd_bench.scoring.run import ScoreOptions


@dataclass(frozen=True)
class AttackedSubset:
    """The clean images every attack runs on: ascending ``indices`` into the clean split and their ``labels``."""

    indices: np.ndarray
    labels: np.ndarray


def attacked_subset(sets: ScoringSets, config: AdversarialConfig) -> AttackedSubset:
    """The class-balanced, seeded subset of the clean split the attacks of ``config`` run on (empty: no attacks)."""
    clean = sets.clean
    if not config.attacks:
        return AttackedSubset(np.empty(0, np.int64), np.empty(0, np.int64))
    indices = adversarial_subset(clean.labels, config.n, config.seed)
    return AttackedSubset(indices, np.asarray(clean.labels[indices]))


def attack_entries(
    sets: ScoringSets, options: ScoreOptions, subset: AttackedSubset
) -> dict[AttackName, dict[str, Any]]:
    """Per attack, its record entry (settings, eps levels, subset hash): what its cache keys are made of."""
    config = options.adversarial
    clean_sha = sets.clean.sha256("images")
    return {
        attack: adversarial_entry(config.settings(attack), config.eps, clean_sha, subset.indices, options.engine.batch)
        for attack in config.attacks
    }


@dataclass(frozen=True)
class Need:
    """A pass the cache lacks: of the model ``key`` on the stored set ``set_name`` (``attack`` None), or of one
    attack at one eps on the attacked subset (``set_name`` is then the clean set)."""

    key: str
    set_name: str
    attack: AttackName | None = None
    eps: float = 0.0
    cache_key: str = ""


def missing_passes(
    key: str, cache: LogitsCache, sets: ScoringSets, options: ScoreOptions, subset: AttackedSubset
) -> list[Need]:
    """The passes of the model cached under ``cache`` that must run: every one with ``recompute``, else the misses."""
    needs = []
    for name, stored in sets.sets.items():
        levels, n = stored.images.shape[:2]
        if options.recompute or read_unless_damaged(cache.load_set, stored.sha256("images"), levels, n) is None:
            needs.append(Need(key, name))
    for attack, entry in attack_entries(sets, options, subset).items():
        for eps in options.adversarial.eps:
            cache_key = adversarial_key(entry, eps)
            load = cache.load_adversarial
            if options.recompute or read_unless_damaged(load, attack.value, cache_key, subset.indices) is None:
                needs.append(Need(key, sets.clean.name, attack, eps, cache_key))
    return needs


@dataclass(frozen=True)
class ModelRecipe:
    """How a worker gets one model of the call.

    Attributes:
        key: identifies the model (its logits-cache directory: checkpoint hash and spec), to reuse a loaded one.
        load: returns the model on the worker (provided by the executor).
    """

    key: str
    load: Callable[[], LoadedModel]


@dataclass(frozen=True)
class SetPass:
    """Logits (S, N, C) of one stored set (all its levels)."""

    model: ModelRecipe
    engine: EngineConfig
    set_name: str
    images: Callable[[], np.ndarray]
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
    clean_images: Callable[[], np.ndarray]
    indices: np.ndarray
    labels: np.ndarray
    cache_key: str


Pass = SetPass | AttackPass


@dataclass(frozen=True)
class PassModel:
    """A model of the call: its record name, the driver's loaded copy (for its cache key), and how workers get it."""

    name: str
    loaded: LoadedModel
    worker_input: WorkerInput[LoadedModel]


def in_process(name: str, loaded: LoadedModel) -> PassModel:
    """A model whose passes run in this process, on the driver's own loaded copy."""
    same = functools.partial(_same, loaded)
    return PassModel(name, loaded, WorkerInput(load=same, files=(), value=same))


def _same(value: LoadedModel) -> LoadedModel:
    """The model as the driver loaded it."""
    return value


def forward_passes(
    executor: Executor, models: Sequence[PassModel], sets: ScoringSets, results: Path, options: ScoreOptions
) -> list[frozenset[str]]:
    """Compute every set's and attack's logits missing from the cache on ``executor``, and cache them.

    All models' units go out together, so a call with many checkpoints fills a cluster. Afterwards
    ``score_model`` finds every logits array in the cache; it is told which sets had their forward pass here
    (the record's ``scoring.forward_passes``).

    Returns:
        Per model, the names of the stored sets whose forward pass ran in this call.
    """
    caches: dict[str, LogitsCache] = {}
    inputs: dict[str, WorkerInput[LoadedModel]] = {}
    keys = []
    for model in models:
        cache = LogitsCache.for_model(results, model.loaded.checkpoint.sha256, model.loaded.spec.to_json())
        key = cache.relative.as_posix()
        keys.append(key)
        if key not in caches:  # the same checkpoint and spec twice: computed once
            caches[key], inputs[key] = cache, model.worker_input
    subset = attacked_subset(sets, options.adversarial)
    needs = [need for key, cache in caches.items() for need in missing_passes(key, cache, sets, options, subset)]
    units = _units(executor, needs, inputs, sets, options, subset)
    computed: dict[str, set[str]] = {key: set() for key in caches}
    resources = Resources(cpus=1.0, gpus=1.0 if torch.device(options.engine.device).type == "cuda" else 0.0)
    total = sum(_images(unit) for unit in units)
    desc = models[0].name if len(models) == 1 else f"{len(units)} forward passes and attacks"
    advanced = [0]  # images of the current unit already counted by a pass running in this process

    def advance(images: int) -> None:
        advanced[0] += images
        bar.update(images)

    try:
        with progress_bar(total, desc, enabled=options.progress and bool(units)) as bar:
            _in_process_progress[:] = [advance]
            for done, (unit, logits) in enumerate(executor.map_unordered(run_pass, units, resources), start=1):
                cache = caches[unit.model.key]
                if isinstance(unit, SetPass):
                    stored = sets.sets[unit.set_name]
                    cache.save_set(unit.images_sha256, logits, label_files(stored), f"set {unit.set_name}")
                    computed[unit.model.key].add(unit.set_name)
                else:
                    cache.save_adversarial(unit.attack.value, unit.cache_key, logits, unit.indices, unit.labels)
                bar.set_postfix_str(f"{done}/{len(units)} units", refresh=False)
                bar.update(max(0, _images(unit) - advanced[0]))
                advanced[0] = 0
    finally:
        _in_process_progress.clear()
        _release_worker_model()  # units that ran in this process: the driver keeps no extra reference
    return [frozenset(computed[key]) for key in keys]


def _images(unit: Pass) -> int:
    """Images a unit runs through the model: every level of a set, or the attacked subset."""
    if isinstance(unit, SetPass):
        return unit.size
    return len(unit.indices)


def _units(
    executor: Executor,
    needs: Sequence[Need],
    models: Mapping[str, WorkerInput[LoadedModel]],
    sets: ScoringSets,
    options: ScoreOptions,
    subset: AttackedSubset,
) -> list[Pass]:
    """The units of ``needs``, each carrying how its worker gets its model and images (provided once each)."""
    model_keys = sorted({need.key for need in needs})
    set_names = sorted({need.set_name for need in needs})
    stored = {name: sets.sets[name] for name in set_names}  # the clean set among them, for attacks
    images = [
        array_file(
            Path(stored[name].path, stored[name].manifest.arrays["images"].file).resolve(),
            Path(stored[name].path, MANIFEST).resolve(),
        )
        for name in set_names
    ]
    provided = executor.provide([*(models[key] for key in model_keys), *images])
    recipes = {key: ModelRecipe(key, load) for key, load in zip(model_keys, provided[: len(model_keys)], strict=True)}
    readers = dict(zip(set_names, provided[len(model_keys) :], strict=True))
    config = options.adversarial
    units: list[Pass] = []
    for need in needs:
        recipe, reader = recipes[need.key], readers[need.set_name]
        if need.attack is None:
            levels, n = stored[need.set_name].images.shape[:2]
            sha = stored[need.set_name].sha256("images")
            units.append(SetPass(recipe, options.engine, need.set_name, reader, sha, int(levels * n)))
        else:
            attack = AttackPass(
                recipe, options.engine, need.attack, need.eps, config, reader, subset.indices, subset.labels,
                need.cache_key,
            )  # fmt: skip
            units.append(attack)
    return units


_worker_model: dict[str, LoadedModel] = {}  # the last model this process loaded, by recipe key
# the driver's progress callback while units run in the driver's own process (empty in worker processes)
_in_process_progress: list[Callable[[int], None]] = []
_worker_engines: dict[EngineConfig, ForwardEngine] = {}  # that model's engines


def _release_worker_model() -> None:
    _worker_model.clear()
    _worker_engines.clear()


def run_pass(unit: Pass) -> np.ndarray:
    """The logits of one unit (runs on a worker): float32 (S, N, C) for a set, (n, C) for an attack."""
    loaded = _worker_model.get(unit.model.key)
    if loaded is None:
        _release_worker_model()
        loaded = _worker_model[unit.model.key] = unit.model.load()
    engine = _worker_engines.get(unit.engine)
    if engine is None:
        engine = _worker_engines[unit.engine] = ForwardEngine(loaded.module, unit.engine)
    advance = _in_process_progress[0] if _in_process_progress else None
    if isinstance(unit, SetPass):
        return engine.set_logits(unit.images(), advance)
    clean = unit.clean_images()[0]
    images = np.asarray(clean[unit.indices])
    num_classes = int(loaded.spec.num_classes)
    return attack_logits(engine, images, unit.labels, unit.attack, unit.eps, unit.config, num_classes, advance)
