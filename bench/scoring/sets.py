"""The sets one ``score`` call runs on: the clean split and derived sets from one store, loaded and checked once.

Loading verifies every array against its manifest hash, since the logits cache is keyed by those hashes.
Every set must come from the clean split's source: a set generated from other images would be ratioed
against the wrong clean accuracy. An external set (images read from elsewhere, e.g. CIFAR-10G; its manifest's
``resources["external"]``) records the clean split it is scored against; its size is its own, and its ratio to
clean accuracy is not paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.registry import parse_set_names
from libkd_bench.datasets_gen.sources import SourceKind
from libkd_bench.datasets_gen.store import MANIFEST, SetStore, StoredSet
from libkd_bench.metrics.outcomes import CLEAN


@dataclass(frozen=True)
class ScoringSets:
    """Verified sets, ``clean`` first, shared by every checkpoint of a call."""

    root: Path
    sets: Mapping[str, StoredSet]

    @property
    def clean(self) -> StoredSet:
        return self.sets[CLEAN]

    @property
    def source(self) -> dict[str, Any]:
        """The clean split's source description (``id``, kind, location, sha256, n, limit)."""
        return dict(self.clean.manifest.source)

    @property
    def source_id(self) -> str:
        return str(self.clean.manifest.source["id"])

    @property
    def total_images(self) -> int:
        """Images over every set and severity level: the work of one model's forward passes."""
        return sum(int(s.images.shape[0] * s.images.shape[1]) for s in self.sets.values())


def parse_set_list(text: str | None) -> list[str] | None:
    """``--sets a,b`` -> set names in order without duplicates; None or empty -> None (every set in the store).

    Names are read by generate-sets' parser (:func:`libkd_bench.datasets_gen.registry.parse_set_names`), so a
    family (``corruptions``, ``cifar10g``) stands for its member sets here too, and a name that is neither a set
    nor a family fails with its close matches before anything is loaded.
    """
    if not any(n.strip() for n in (text or "").split(",")):
        return None
    return parse_set_names(text)


def _source_arguments(store: SetStore) -> str:
    """`` --source SPEC [--limit N]``: what generate-sets needs to add sets to this store from its clean split."""
    manifest = store.manifest(CLEAN)
    source = manifest.source if manifest is not None else {}
    kind, location, limit = source.get("kind"), source.get("location"), source.get("limit")
    if not kind:
        return ""
    spec = f"{kind}:{location}" if location and kind != SourceKind.CIFAR10.value else str(kind)
    return f" --source {spec}" + (f" --limit {limit}" if limit else "")


def load_scoring_sets(root: Path, names: Sequence[str] | None = None) -> ScoringSets:
    """Load ``clean`` and the named sets (default: all) from the store at ``root``; one-line errors otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise BenchError(
            f"sets directory {root} does not exist; create it with libkd-bench generate-sets --sets-dir {root}"
        )
    store = SetStore(root)
    available = store.names()
    if CLEAN not in available:
        raise BenchError(f"sets directory {root} holds no clean set; run libkd-bench generate-sets --sets-dir {root}")
    for name in store.damaged():
        if not names or name in names:
            raise BenchError(
                f"set {name} in {root} has arrays but no {MANIFEST} (deleted or copied in part); rebuild it with "
                f"libkd-bench generate-sets --sets {name} --sets-dir {root} --force"
            )
    missing = [name for name in names or () if name not in available]
    if missing:
        raise BenchError(
            f"set{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in {root} (it holds "
            f"{', '.join(available)}); build {'them' if len(missing) > 1 else 'it'} with libkd-bench generate-sets "
            f"--sets {','.join(missing)}{_source_arguments(store)} --sets-dir {root}"
        )
    chosen = [CLEAN, *(n for n in (names or available) if n != CLEAN)]
    sets = {name: store.load(name, verify=True) for name in chosen}
    clean_source = sets[CLEAN].manifest.source.get("id")
    for name, stored in sets.items():
        source = stored.manifest.source.get("id")
        if source != clean_source:
            raise BenchError(
                f"set {name} in {root} was generated from source {source} but clean from {clean_source}; "
                f"regenerate it with libkd-bench generate-sets --sets {name} --sets-dir {root} --force"
            )
        n_clean = sets[CLEAN].labels.shape[0]
        if "source_index" in stored.arrays:
            index = np.asarray(stored.arrays["source_index"])
            if index.shape != stored.labels.shape or (index.size and (index.min() < 0 or index.max() >= n_clean)):
                raise BenchError(
                    f"set {name} in {root} indexes images outside its clean split; regenerate it with "
                    f"libkd-bench generate-sets --sets {name} --sets-dir {root} --force"
                )
        elif stored.labels.shape[0] != n_clean and not stored.external:
            raise BenchError(
                f"set {name} in {root} has {stored.labels.shape[0]} images, clean has "
                f"{sets[CLEAN].labels.shape[0]}; regenerate it with generate-sets --force"
            )
    return ScoringSets(root, sets)
