"""What checks are judged on: a store's sets and the predictions of the models the checks name.

Predictions come from forward passes whose logits are cached under ``RESULTS/cache`` exactly as ``score`` caches
them (keyed by checkpoint, spec and images hash), so a second ``validate`` (or a mutant that leaves a set
unchanged) costs no pass. Only the (model, set) pairs some check needs are run. Every model is located and
verified before the first pass, so a missing checkpoint fails in seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from libkd_bench.datasets_gen.store import StoredSet
from libkd_bench.metrics.bootstrap import BootstrapConfig

if TYPE_CHECKING:
    from libkd_bench.models.loading.load import LoadedModel
    from libkd_bench.scoring.forward import EngineConfig


@dataclass(frozen=True)
class Evidence:
    """Sets by name and int64 (S, N) predictions by (model, set)."""

    sets: Mapping[str, StoredSet]
    predictions: Mapping[tuple[str, str], np.ndarray]
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    seed: int = 0

    def predicted(self, model: str, set_name: str) -> np.ndarray:
        return self.predictions[model, set_name]

    def labels(self, set_name: str, array: str = "labels") -> np.ndarray:
        return np.asarray(self.sets[set_name].arrays[array])

    def rng(self, *key: int) -> np.random.Generator:
        """A generator for one check's permutations and folds, fixed by the evidence seed and ``key``."""
        return np.random.default_rng([self.seed, *key])

    def replaced(self, sets: Mapping[str, StoredSet], predictions: Mapping[tuple[str, str], np.ndarray]) -> Evidence:
        """This evidence with some sets (and their predictions) exchanged: a mutant's view of the store."""
        return Evidence({**self.sets, **sets}, {**self.predictions, **predictions}, self.bootstrap, self.seed)


class ModelPool:
    """The validation models, loaded once each on first use, after all were located."""

    def __init__(self, names: list[str], device: str, load: Callable[[str], LoadedModel] | None = None) -> None:
        from libkd_bench.models.zoo import fetch

        for name in names:  # fail in seconds, not after scoring the others
            fetch(name)
        self.device = device
        self._load = load or self._load_zoo
        self._loaded: dict[str, LoadedModel] = {}

    def _load_zoo(self, name: str) -> LoadedModel:
        from libkd_bench.models.loading.load import load_model

        return load_model(f"zoo:{name}", device=self.device)

    def get(self, name: str) -> LoadedModel:
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]


def predict(
    pool: ModelPool,
    needs: Mapping[str, set[str]],
    sets: Mapping[str, StoredSet],
    results: Path,
    engine: EngineConfig,
    progress: Callable[[str, str], None] | None = None,
) -> dict[tuple[str, str], np.ndarray]:
    """Predictions of each model in ``needs`` on each of its sets (those present in ``sets``), cached logits first."""
    from libkd_bench.scoring.forward import ForwardEngine
    from libkd_bench.scoring.logits_cache import LogitsCache
    from libkd_bench.scoring.stored_outcomes import cached_set_logits

    engines: dict[str, ForwardEngine] = {}  # built on a model's first cache miss only

    def forward(model: str, loaded: LoadedModel, stored: StoredSet) -> np.ndarray:
        if progress:
            progress(model, stored.name)
        if model not in engines:
            engines[model] = ForwardEngine(loaded.module, engine)
        return engines[model].set_logits(stored.images)

    out: dict[tuple[str, str], np.ndarray] = {}
    for model, wanted in needs.items():
        chosen = [name for name in sets if name in wanted]
        if not chosen:
            continue
        loaded = pool.get(model)
        cache = LogitsCache.for_model(results, loaded.checkpoint.sha256, loaded.spec.to_json())
        for name in chosen:
            stored = sets[name]
            logits, _ = cached_set_logits(cache, stored, functools.partial(forward, model, loaded, stored))
            out[model, name] = np.asarray(logits).argmax(axis=-1).astype(np.int64)
    return out
