"""Build derived sets into a store: validate once, reuse identical sets, fan chunks out to worker processes.

Images are processed in fixed chunks of ``CHUNK_SIZE`` whatever the worker count, every image draws from its
own seed, and results are written by index, so output is byte-identical for any ``workers``. Each set is
written into a temporary directory and appears only when complete. A set made from other sets (``requires``)
records their identity in its manifest, so it is rebuilt whenever they change. An external set (``external``:
images read from outside the clean split, e.g. CIFAR-10G) is read whole and records its origin instead.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import Executor, LocalExecutor, Resources, array_file
from libkd_bench.core.progress import progress_bar
from libkd_bench.core.provenance import library_versions
from libkd_bench.datasets_gen.registry import (
    Batch,
    Derived,
    GeneratorEntry,
    get_generator,
    linked_backends,
    with_prerequisites,
)
from libkd_bench.datasets_gen.seeding import SetSeed
from libkd_bench.datasets_gen.sources import Split
from libkd_bench.datasets_gen.store import MANIFEST, SetDraft, SetManifest, SetStore, Severity

CHUNK_SIZE = 256
CLEAN = "clean"


@dataclass(frozen=True)
class SetPlan:
    """A fully resolved request for one set: entry, parameters, backend (and the files it loads) and seed."""

    entry: GeneratorEntry
    parameters: Mapping[str, Any]
    backend: str | None
    seed: int
    resources: Mapping[str, Any] = field(default_factory=dict)

    def manifest(self, source: Mapping[str, Any], inputs: Mapping[str, Any] | None = None) -> SetManifest:
        entry = self.entry
        severities = tuple(
            Severity(level, entry.severity_parameter, value) for level, value in enumerate(entry.levels, start=1)
        )
        return SetManifest(
            set=entry.name,
            generator=f"{entry.fn.__module__}.{entry.fn.__qualname__}",
            cue=entry.cue.value,
            backend=self.backend,
            parameters=dict(self.parameters),
            severities=severities,
            seed=self.seed,
            source=dict(source),
            versions=library_versions(),
            resources=dict(self.resources),
            inputs=dict(inputs or {}),
            revision=entry.revision,
        )


@dataclass(frozen=True)
class BuildReport:
    name: str
    status: str  # "built" or "reused"
    path: Path
    images: int
    seconds: float


@dataclass(frozen=True)
class _ChunkJob:
    """What a worker needs to make one chunk; the arrays as the executor provides them (memory-mapped from the
    store, or shipped once), so a job pickles small."""

    set_name: str
    parameters: Mapping[str, Any]
    seed: int
    level: int
    value: Any
    start: int
    stop: int
    clean_images: Callable[[], np.ndarray]
    clean_labels: Callable[[], np.ndarray]
    inputs: Mapping[str, Callable[[], np.ndarray]] = field(default_factory=dict)
    backend: str | None = None


def plan_set(name: str, seed: int, parameters: Mapping[str, Any] | None = None, backend: str | None = None) -> SetPlan:
    """Check a request against the registry: known set, known parameters, known backend."""
    entry = get_generator(name)
    unknown = set(parameters or {}) - set(entry.defaults)
    if unknown:
        allowed = ", ".join(sorted(entry.defaults)) or "none"
        raise BenchError(f"set {name} has no parameter {sorted(unknown)[0]!r}; its parameters: {allowed}")
    if backend is not None and backend not in entry.backends:
        choices = ", ".join(entry.backends) or "none (it has a single implementation)"
        raise BenchError(f"set {name} has no backend {backend!r}; choose from {choices}")
    merged = {**entry.defaults, **typed_parameters(name, entry.defaults, parameters or {})}
    if entry.config is not None:
        entry.config(**merged)  # range checks now, not in a worker after the prerequisites were built
    chosen_backend = backend or (entry.backends[0] if entry.backends else None)
    resources = entry.resources(chosen_backend) if entry.resources and chosen_backend else {}
    if entry.external is not None:
        resources = {"external": dict(entry.external.identity(**merged))}
    return SetPlan(entry, merged, chosen_backend, int(seed), dict(resources))


def typed_parameters(name: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` checked against the types of the defaults (an int where a float is expected becomes a float).

    Ranges are each set's own business (its ``config``); types are checked here for all, so a value such as
    ``compactness=abc`` fails as one line before any range check compares a string with a number.
    """
    typed = {}
    for key, value in given.items():
        default = defaults[key]
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            kind, value = "a finite number", float(value) if ok else value
        else:
            ok, kind = True, ""
        if not ok:
            raise BenchError(
                f"set {name} parameter {key}={value!r} must be {kind}, e.g. --param {name}.{key}={json.dumps(default)}"
            )
        typed[key] = value
    return typed


def plan_sets(
    names: Sequence[str],
    seed: int,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    backends: Mapping[str, str] | None = None,
) -> list[SetPlan]:
    """Plans for ``names`` and their prerequisites; parameters and backends may name either.

    Sets linked by ``backend_of`` share one backend (``--backend shape=fcn`` also makes ``segmentation``, whose
    masks ``shape`` draws, use fcn); conflicting choices are refused.
    """
    parameters, backends = parameters or {}, backends or {}
    everything = with_prerequisites(names)
    for name in {*parameters, *backends} - set(everything):
        raise BenchError(
            f"--backend/--param name set {name!r}, which is not among the sets being generated or their prerequisites"
        )
    resolved = linked_backends(names, backends)
    return [plan_set(name, seed, parameters.get(name), resolved[name]) for name in everything]


def build_sets(
    plans: Sequence[SetPlan],
    split: Split,
    store: SetStore,
    *,
    workers: int = 1,
    force: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
) -> list[BuildReport]:
    """Build (or reuse) ``clean`` and every planned set, prerequisites first.

    Chunks run on ``executor`` when given (entered and closed by the caller), else on local worker processes.
    """
    if workers < 1:
        raise BenchError(f"--workers must be at least 1, got {workers}")
    seed = plans[0].seed if plans else 0
    by_name = {plan.entry.name: plan for plan in plans}
    names = with_prerequisites([CLEAN, *by_name])
    resolved = linked_backends(names, {name: plan.backend for name, plan in by_name.items()})
    ordered = [by_name.get(name) or plan_set(name, seed, backend=resolved[name]) for name in names]
    _refuse_mixing_sources(store, split, names)
    source = split.info.to_json()
    reports = []
    with contextlib.nullcontext(executor) if executor is not None else LocalExecutor(workers) as pool:
        for plan in ordered:
            started = time.perf_counter()
            manifest = plan.manifest(source, _inputs_identity(plan.entry, store))
            existing = store.manifest(plan.entry.name)
            if existing is not None and not force and existing.recipe() == manifest.recipe():
                store.load(plan.entry.name, verify=True)
                status = "reused"
            else:
                _build_one(plan, manifest, split, store, pool, progress)
                status = "built"
            elapsed = time.perf_counter() - started
            images = len(split.labels)
            if plan.entry.external is not None:  # its own images, not the clean split's
                images = _manifest(store, plan.entry.name).arrays["labels"].shape[0]
            reports.append(BuildReport(plan.entry.name, status, store.path(plan.entry.name), images, elapsed))
    return reports


def _refuse_mixing_sources(store: SetStore, split: Split, names: Sequence[str]) -> None:
    """Refuse a build that would leave sets of two clean splits in one store (``--limit 200`` into a store made
    with ``--limit 100``): the sets it does not rebuild would stay on the other split."""
    kept = [name for name in store.names() if name not in names]
    others = [name for name in kept if (_stored_source(store, name).get("id")) != split.info.id]
    if not others:
        return
    theirs = _stored_source(store, others[0])
    limit = f" --limit {theirs['limit']}" if theirs.get("limit") else " without --limit"
    raise BenchError(
        f"{store.root} holds sets of another clean split ({', '.join(others)} from {theirs.get('id')}, made{limit}) "
        f"than this call's {split.info.id}; generate into another --out, or use that store's --source and --limit"
    )


def _stored_source(store: SetStore, name: str) -> Mapping[str, Any]:
    manifest = store.manifest(name)
    return manifest.source if manifest is not None else {}


def _inputs_identity(entry: GeneratorEntry, store: SetStore) -> dict[str, Any]:
    """What a set is made from besides the clean split: each required set's backend, resources and array hashes."""
    identity = {}
    for name in entry.requires:
        manifest = _manifest(store, name)
        identity[name] = {
            "backend": manifest.backend,
            "resources": dict(manifest.resources),
            "arrays": manifest.array_hashes(),
        }
    return identity


def _manifest(store: SetStore, name: str) -> SetManifest:
    """The manifest of a prerequisite that ``build_sets`` built (or reused) before the set that requires it."""
    manifest = store.manifest(name)
    if manifest is None:
        raise RuntimeError(f"set {name} was not built before the sets that require it")
    return manifest


def _build_one(
    plan: SetPlan, manifest: SetManifest, split: Split, store: SetStore, pool: Executor, progress: bool
) -> None:
    entry = plan.entry
    n = len(split.labels)
    if entry.name == CLEAN:
        with store.draft(CLEAN) as draft:
            draft.put("images", split.images[None])
            draft.put("labels", split.labels)
            draft.finish(manifest)
        return
    if entry.external is not None:  # read whole, in this process: nothing depends on the worker count
        derived = entry.external.load(**plan.parameters)
        with store.draft(entry.name) as draft:
            draft.put("images", np.asarray(derived.images, dtype=np.uint8)[None])
            draft.put("labels", np.asarray(derived.labels, dtype=np.int64))
            draft.finish(manifest)
        return
    files = {
        f"{name}/{array}": store.path(name) / record.file
        for name in [CLEAN, *entry.requires]
        for array, record in _manifest(store, name).arrays.items()
    }
    readers = dict(
        zip(
            files,
            pool.provide([array_file(path.resolve(), path.parent.resolve() / MANIFEST) for path in files.values()]),
            strict=True,
        )
    )
    inputs = {key: readers[key] for key in files if not key.startswith(f"{CLEAN}/")}
    jobs = [
        _ChunkJob(
            entry.name,
            plan.parameters,
            plan.seed,
            level,
            value,
            start,
            min(start + CHUNK_SIZE, n),
            readers[f"{CLEAN}/images"],
            readers[f"{CLEAN}/labels"],
            inputs,
            plan.backend,
        )
        for level, value in enumerate(entry.levels, start=1)
        for start in range(0, n, CHUNK_SIZE)
    ]
    with (
        store.draft(entry.name) as draft,
        progress_bar(n * len(entry.levels), entry.name, enabled=progress, leave=False) as bar,
    ):
        kept = np.load(files[entry.gate]) if entry.gate else None
        writer = _DraftWriter(draft, len(entry.levels), n, kept)
        for job, derived in pool.map_unordered(run_chunk, jobs, _chunk_resources(plan)):
            writer.write(job, derived)
            bar.update(job.stop - job.start)
        writer.check_complete()
        summary = writer.summary(entry.summary) if entry.summary is not None else {}
        subset = writer.store_subset(entry.gate, np.asarray(split.labels)) if kept is not None else {}
        draft.finish(replace(manifest, subset=subset, summary=summary))


def _chunk_resources(plan: SetPlan) -> Resources:
    """A chunk of a set with loaded weights (a neural backend) asks for a GPU where the executor has one."""
    return Resources(cpus=1.0, gpus=1.0 if plan.resources else 0.0)


def run_chunk(job: _ChunkJob) -> Derived:
    """Make one chunk of one level (runs in a worker process)."""
    entry = get_generator(job.set_name)
    split_images = job.clean_images()[0]
    split_labels = job.clean_labels()
    batch = Batch(
        images=np.array(split_images[job.start : job.stop]),
        labels=np.array(split_labels[job.start : job.stop]),
        indices=np.arange(job.start, job.stop),
        level=job.level,
        seed=SetSeed(job.seed, job.set_name),
        inputs={key: read() for key, read in job.inputs.items()},
        split_images=split_images,
        split_labels=split_labels,
        backend=job.backend,
    )
    return entry.fn(batch, job.value, **job.parameters)


class _DraftWriter:
    """Places chunk results into the draft's memory maps, allocating them on the first chunk.

    For a gated set (``kept`` given) results are collected in memory and only the kept rows are stored, by
    :meth:`store_subset`, with their positions in the clean split as ``source_index``.
    """

    def __init__(self, draft: SetDraft, levels: int, n: int, kept: np.ndarray | None = None) -> None:
        self.draft, self.levels, self.n = draft, levels, n
        self.kept = kept
        self.arrays: dict[str, np.ndarray] = {}
        self.written = np.zeros((levels, n), dtype=bool)

    def _allocate(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if self.kept is not None:
            return np.zeros(shape, dtype=dtype)
        return self.draft.allocate(name, shape, dtype)

    def write(self, job: _ChunkJob, derived: Derived) -> None:
        rows = slice(job.start, job.stop)
        if not self.arrays:
            self.arrays["images"] = self._allocate(
                "images", (self.levels, self.n, *derived.images.shape[1:]), np.dtype(np.uint8)
            )
            for name, values in {"labels": derived.labels, **derived.extras}.items():
                self.arrays[name] = self._allocate(name, (self.n, *values.shape[1:]), values.dtype)
        self.arrays["images"][job.level - 1, rows] = derived.images
        if job.level == 1:
            for name, values in {"labels": derived.labels, **derived.extras}.items():
                self.arrays[name][rows] = values
        self.written[job.level - 1, rows] = True

    def check_complete(self) -> None:
        if not self.written.all():
            raise RuntimeError("a chunk of the set was never written")

    def summary(self, summarise: Callable[[Mapping[str, np.ndarray]], Mapping[str, Any]]) -> dict[str, Any]:
        """``summarise`` applied to the rows that will be stored of ``labels`` and every extra array."""
        rows = np.flatnonzero(self.kept) if self.kept is not None else slice(None)
        return dict(summarise({name: values[rows] for name, values in self.arrays.items() if name != "images"}))

    def store_subset(self, gate: str, split_labels: np.ndarray) -> dict[str, Any]:
        """Store the kept rows of every array and ``source_index``; returns the manifest's ``subset`` entry."""
        assert self.kept is not None
        kept = np.asarray(self.kept, dtype=bool)
        if not kept.any():
            raise BenchError(
                f"the gate {gate} keeps none of the {self.n} images; loosen the segmentation.gate_* parameters"
            )
        index = np.flatnonzero(kept)
        self.draft.put("images", self.arrays.pop("images")[:, index])
        for name, values in self.arrays.items():
            self.draft.put(name, values[index])
        self.draft.put("source_index", index.astype(np.int64))
        classes = np.unique(split_labels)
        rates = {str(int(c)): float(kept[split_labels == c].mean()) for c in classes}
        return {
            "gate": gate,
            "n_source": self.n,
            "n": len(index),
            "keep_rate_per_class": rates,
            "indices": index.tolist(),
        }
