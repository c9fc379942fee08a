"""A run's set outcomes, rebuilt from its record's ``sets`` entries and its logits cache alone.

``score`` describes every set it scored in ``record.sets`` (hashes, severities, for adversarial pseudo-sets
the attack settings and cache files). This module turns such an entry plus cached arrays back into a
:class:`~libkd_bench.metrics.outcomes.SetOutcome`, the same way whether the logits were just computed or read back
later by ``rescore`` or as a teacher/baseline run, so all three paths give identical metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.core.provenance import sha256_json
from libkd_bench.datasets_gen.store import Severity, StoredSet
from libkd_bench.metrics.outcomes import ADVERSARIAL_PREFIX, CLEAN, SetOutcome
from libkd_bench.records.run_record import RunRecord
from libkd_bench.scoring.adversarial_settings import AttackName, eps_label
from libkd_bench.scoring.logits_cache import LABEL_ARRAYS, DamagedCacheEntry, LogitsCache, read_unless_damaged

_ATTACK_ORDER = [a.set_name for a in AttackName]


def ordered_set_names(names: Iterable[str]) -> list[str]:
    """``clean`` first, then stored sets by name, then adversarial pseudo-sets in attack order."""
    names = list(names)
    stored = sorted(n for n in names if n != CLEAN and not n.startswith(ADVERSARIAL_PREFIX))
    attacks = sorted((n for n in names if n.startswith(ADVERSARIAL_PREFIX)), key=_attack_rank)
    return [CLEAN, *stored, *attacks] if CLEAN in names else [*stored, *attacks]


def stored_set_entry(stored: StoredSet) -> dict[str, Any]:
    """``record.sets[name]`` for a stored set: its hashes, recipe and severities; for an external set also
    ``paired_with_clean: false`` and its origin (``external``: repository, commit, licence, citation)."""
    manifest = stored.manifest
    external = manifest.resources.get("external")
    return {
        **({"paired_with_clean": False, "external": dict(external)} if external else {}),
        "sha256": stored.sha256("images"),
        "labels_sha256": stored.sha256("labels"),
        "label_arrays": {a: stored.sha256(a) for a in LABEL_ARRAYS if a in manifest.arrays},
        "generator": manifest.generator,
        "backend": manifest.backend,
        "seed": manifest.seed,
        "parameters": dict(manifest.parameters),
        "severities": [{"level": s.level, "parameter": s.parameter, "value": s.value} for s in manifest.severities],
        "n": int(stored.labels.shape[0]),
    }


def label_files(stored: StoredSet) -> dict[str, Path]:
    """The set's label-like array files, to copy into the logits cache."""
    arrays = stored.manifest.arrays
    return {a: stored.path / arrays[a].file for a in LABEL_ARRAYS if a in arrays}


def cached_set_logits(
    cache: LogitsCache, stored: StoredSet, compute: Callable[[], np.ndarray], recompute: bool = False
) -> tuple[np.ndarray, bool]:
    """A stored set's float32 (S, N, C) logits from the cache, or ``compute()`` saved there with the set's label
    files; the flag is True when they were computed. Cached logits whose label files are missing from the cache
    are kept and the labels written beside them."""
    sha = stored.sha256("images")
    levels, n = stored.images.shape[:2]
    logits = None if recompute else read_unless_damaged(cache.load_set, sha, levels, n)
    label_arrays = {a: stored.sha256(a) for a in LABEL_ARRAYS if a in stored.manifest.arrays}
    if logits is not None and cache.has_labels(sha, label_arrays):
        return logits, False
    if logits is None:
        logits = compute()
    cache.save_set(sha, logits, label_files(stored), f"set {stored.name}")
    return logits, True


def stored_outcome(
    name: str, entry: Mapping[str, Any], logits: np.ndarray, labels: Mapping[str, np.ndarray]
) -> SetOutcome:
    """Outcome of a stored set from its record entry, (S, N, C) logits and label arrays."""
    severities = [Severity(**s) for s in entry["severities"]]
    levels = tuple(s.label for s in severities) if any(s.parameter for s in severities) else ()
    return SetOutcome.from_logits(
        name,
        logits,
        labels["labels"],
        levels=levels,
        images_key=str(entry["sha256"]),
        shape_labels=labels.get("shape_label"),
        texture_labels=labels.get("texture_label"),
        indices=None if "source_index" not in labels else np.asarray(labels["source_index"], dtype=np.int64),
        paired_with_clean=bool(entry.get("paired_with_clean", True)),
    )


def adversarial_entry(
    settings: Mapping[str, Any], eps: Iterable[float], clean_sha256: str, indices: np.ndarray, batch_size: int
) -> dict[str, Any]:
    """``record.sets["adv-<attack>"]`` without its cache files: everything the attacked images depend on."""
    return {
        **settings,
        "eps": [float(e) for e in eps],
        "n": len(indices),
        "clean_sha256": clean_sha256,
        "indices_sha256": sha256_json(np.asarray(indices).tolist()),
        "batch_size": int(batch_size),
    }


def adversarial_key(entry: Mapping[str, Any], eps: float) -> str:
    """Cache key of one eps level: every setting, the batch size included (it orders the random draws)."""
    return sha256_json({**{k: v for k, v in entry.items() if k not in ("cache", "eps")}, "eps": float(eps)})


def adversarial_images_key(entry: Mapping[str, Any]) -> str:
    """Identity of the attack as a pseudo-set: two runs compare image by image when these keys match."""
    return sha256_json({k: v for k, v in entry.items() if k not in ("cache", "batch_size")})


def adversarial_outcome(name: str, entry: Mapping[str, Any], levels: list[Mapping[str, np.ndarray]]) -> SetOutcome:
    """Outcome of an attack from its entry and one cached ``{"logits", "indices", "labels"}`` per eps."""
    logits = np.stack([level["logits"] for level in levels])
    return SetOutcome.from_logits(
        name,
        logits,
        levels[0]["labels"],
        levels=tuple(eps_label(e) for e in entry["eps"]),
        images_key=adversarial_images_key(entry),
        indices=np.asarray(levels[0]["indices"], dtype=np.int64),
    )


def load_run_outcomes(record: RunRecord, results: Path) -> dict[str, SetOutcome]:
    """Every outcome of ``record`` from its logits cache under ``results``; BenchError when any part is missing."""
    if not record.logits:
        raise BenchError(f"run {record.run_id} names no logits cache; score it again")
    cache = LogitsCache(results, Path(record.logits))
    if not cache.directory.is_dir():
        raise BenchError(f"logits cache {cache.directory} of run {record.run_id} is missing; score it again")
    outcomes = {}
    try:  # without a model, a damaged entry cannot be recomputed here
        for name in ordered_set_names(record.sets):
            entry = record.sets[name]
            if name.startswith(ADVERSARIAL_PREFIX):
                outcomes[name] = _cached_adversarial(record, cache, name, entry)
                continue
            logits = cache.load_set(entry["sha256"], len(entry["severities"]), int(entry["n"]))
            if logits is None:
                raise BenchError(
                    f"logits of set {name} for run {record.run_id} are missing from {cache.directory}; score it again"
                )
            hashes = entry.get("label_arrays") or {"labels": entry["labels_sha256"]}
            outcomes[name] = stored_outcome(name, entry, logits, cache.load_labels(entry["sha256"], hashes))
    except DamagedCacheEntry as exc:
        raise BenchError(f"{exc}; score {record.model} again to recompute it") from None
    return outcomes


def _cached_adversarial(record: RunRecord, cache: LogitsCache, name: str, entry: Mapping[str, Any]) -> SetOutcome:
    levels = []
    for eps in entry["eps"]:
        level = cache.load_adversarial(entry["attack"], adversarial_key(entry, eps))
        if level is None:
            raise BenchError(
                f"{name} logits at {eps_label(eps)} for run {record.run_id} are missing from {cache.directory}; "
                "score it again"
            )
        levels.append(level)
    return adversarial_outcome(name, entry, levels)


def _attack_rank(name: str) -> tuple[int, str]:
    return (_ATTACK_ORDER.index(name) if name in _ATTACK_ORDER else len(_ATTACK_ORDER), name)
