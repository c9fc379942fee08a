"""Score one loaded model on a call's sets and build its run record from the logits cache.

The steps of ``score`` for one model: the passes the cache lacks (planned and run by
:mod:`libkd_bench.scoring.passes`, here or already on an executor), then everything read from the cache: logits
of every set and severity, adversarial logits on the attacked subset; efficiency figures, metric rows (own
metrics, then comparisons with teacher and baseline runs), the record. Nothing is written to ``runs/`` here:
the session writes the record once everything succeeded, so an interrupted run leaves no record behind.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import LocalExecutor
from libkd_bench.core.provenance import library_versions
from libkd_bench.datasets_gen.store import StoredSet
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.metric_rows import metric_rows
from libkd_bench.records.run_record import RunRecord
from libkd_bench.scoring.adversarial_settings import AdversarialConfig
from libkd_bench.scoring.attention import AttentionConfig, score_attention
from libkd_bench.scoring.efficiency import efficiency_figures
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine
from libkd_bench.scoring.logits_cache import LABEL_ARRAYS, LogitsCache, read_unless_damaged
from libkd_bench.scoring.passes import attack_entries, attacked_subset, forward_passes, in_process
from libkd_bench.scoring.reference_runs import KdContext
from libkd_bench.scoring.rescore import utc_now
from libkd_bench.scoring.sets import ScoringSets
from libkd_bench.scoring.stored_outcomes import (
    adversarial_key,
    adversarial_outcome,
    cached_set_logits,
    stored_outcome,
    stored_set_entry,
)

if TYPE_CHECKING:
    from libkd_bench.models import LoadedModel


@dataclass(frozen=True)
class ScoreOptions:
    """Everything about how a call scores, shared by all its checkpoints.

    Attributes:
        engine: device, batch size, precision.
        adversarial: attacks, eps levels, subset size and seed (no attacks: ``attacks=()``).
        bootstrap: resamples, seed and confidence of every interval.
        recompute: run forward passes even when logits are cached.
        attention: the attention-map panel (see libkd_bench.scoring.attention); None: no maps.
        progress: show progress on stderr (a bar on a terminal, a line every ~15 s in logs).
    """

    engine: EngineConfig
    adversarial: AdversarialConfig
    bootstrap: BootstrapConfig
    recompute: bool = False
    progress: bool = True
    attention: AttentionConfig | None = None


def score_model(
    loaded: LoadedModel,
    model_name: str,
    sets: ScoringSets,
    results: Path,
    options: ScoreOptions,
    kd: KdContext,
    computed_elsewhere: Collection[str] | None = None,
) -> RunRecord:
    """Score ``loaded`` on every set; returns the record (not yet written).

    Args:
        loaded: the model (tests pass any object with the same ``module``, ``spec`` and ``checkpoint``).
        model_name: the record's model name.
        sets: the call's verified sets.
        results: results directory; the logits cache goes under ``results/cache``.
        options: how to score.
        kd: teacher and baseline runs to compare with, and the KD method.
        computed_elsewhere: given when this call already ran the passes the cache lacked (on any executor, see
            :func:`libkd_bench.scoring.passes.forward_passes`): the sets whose pass ran. None: they run here, in
            this process. The logits are then read from the cache; ``recompute`` still applies to attention maps.
    """
    if computed_elsewhere is None:
        [computed_elsewhere] = forward_passes(LocalExecutor(), [in_process(model_name, loaded)], sets, results, options)
    spec = loaded.spec.to_json()
    cache = LogitsCache.for_model(results, loaded.checkpoint.sha256, spec)
    engine = ForwardEngine(loaded.module, options.engine)
    outcomes, set_entries = _stored_outcomes(cache, sets)
    computed = sorted(computed_elsewhere)
    adv_outcomes, adv_entries = _adversarial_outcomes(cache, sets, options)
    outcomes.update(adv_outcomes)
    input_size = (3, *sets.clean.images.shape[2:4])
    efficiency = efficiency_figures(engine, input_size, torch.Generator().manual_seed(0))
    attention_rows, attention_entry = [], None
    if options.attention is not None:
        attention_rows, attention_entry = score_attention(
            engine, spec.get("arch"), sets, results, cache.relative, options.attention, kd, options.bootstrap,
            options.recompute,
        )  # fmt: skip
    scoring = {
        "device": str(engine.device),
        "batch_size": options.engine.batch,
        "amp": None if engine.amp_dtype is None else str(engine.amp_dtype).removeprefix("torch."),
        "cpu_threads": engine.cpu_thread_count,
        "bootstrap_resamples": options.bootstrap.resamples,
        "bootstrap_seed": options.bootstrap.seed,
        "confidence": options.bootstrap.confidence,
        "adv": options.adversarial.to_json(),
        "forward_passes": sorted(computed),
        "cached": sorted(set(set_entries) - set(computed)),
        **({"attention": attention_entry} if attention_entry else {}),
    }
    return RunRecord(
        model=model_name,
        source=sets.source,
        checkpoint=loaded.checkpoint.to_json(),
        spec=spec,
        metrics=(*metric_rows(outcomes, options.bootstrap, **kd.reference_outcomes()), *attention_rows),
        sets={**set_entries, **adv_entries},
        kd=kd.to_json(),
        efficiency=efficiency,
        scoring=scoring,
        versions=library_versions(),
        created=utc_now(),
        logits=cache.relative.as_posix(),
    )


def _stored_outcomes(cache: LogitsCache, sets: ScoringSets) -> tuple[dict[str, SetOutcome], dict[str, dict[str, Any]]]:
    outcomes, entries = {}, {}
    for name, stored in sets.sets.items():
        entry = entries[name] = stored_set_entry(stored)
        logits, _ = cached_set_logits(cache, stored, functools.partial(_not_cached, f"set {name}", cache))
        outcomes[name] = stored_outcome(name, entry, logits, _label_arrays(stored))
    return outcomes, entries


def _adversarial_outcomes(
    cache: LogitsCache, sets: ScoringSets, options: ScoreOptions
) -> tuple[dict[str, SetOutcome], dict[str, dict[str, Any]]]:
    subset = attacked_subset(sets, options.adversarial)
    outcomes, entries = {}, {}
    for attack, entry in attack_entries(sets, options, subset).items():
        levels, files = [], []
        for eps in options.adversarial.eps:
            key = adversarial_key(entry, eps)
            level = read_unless_damaged(cache.load_adversarial, attack.value, key, subset.indices)
            if level is None:
                _not_cached(f"attack {attack.value} at eps {eps:g}", cache)
            levels.append(level)
            files.append(cache.adversarial_path(attack.value, key).name)
        entries[attack.set_name] = {**entry, "cache": files}
        outcomes[attack.set_name] = adversarial_outcome(attack.set_name, entry, levels)
    return outcomes, entries


def _not_cached(what: str, cache: LogitsCache) -> np.ndarray:
    """Logits the passes of this call should have cached and did not: the cache changed under the run."""
    raise BenchError(
        f"the logits of {what} are missing from {cache.directory} right after their pass (is another process "
        "deleting the cache?); run the command again"
    )


def _label_arrays(stored: StoredSet) -> dict[str, np.ndarray]:
    return {name: np.asarray(stored.arrays[name]) for name in LABEL_ARRAYS if name in stored.arrays}
