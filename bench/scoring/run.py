"""Score one loaded model on a call's sets and build its run record; rebuild a record's metrics from its cache.

The steps of ``score`` for one checkpoint: logits of every set and severity (from the cache, or a forward pass
that is then cached), adversarial logits on the fixed subset, efficiency figures, metric rows (own metrics,
then comparisons with teacher and baseline runs), the record. Nothing is written to ``runs/`` here: the
command writes the record once everything succeeded, so an interrupted run leaves no record behind.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from libkd_bench.core.progress import progress_bar
from libkd_bench.core.provenance import library_versions
from libkd_bench.datasets_gen.store import StoredSet
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.run_record import RunRecord
from libkd_bench.scoring.adversarial import attack_logits
from libkd_bench.scoring.adversarial_settings import AdversarialConfig, adversarial_subset
from libkd_bench.scoring.attention import AttentionConfig, score_attention
from libkd_bench.scoring.efficiency import efficiency_figures
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine
from libkd_bench.scoring.logits_cache import LABEL_ARRAYS, LogitsCache, read_unless_damaged
from libkd_bench.scoring.reference_runs import KdContext
from libkd_bench.scoring.rescore import metric_rows, utc_now
from libkd_bench.scoring.sets import ScoringSets
from libkd_bench.scoring.stored_outcomes import (
    adversarial_entry,
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
        computed_elsewhere: given when this call already ran every pass it needed on an executor and cached the
            logits: the sets whose pass ran there (recorded as forward passes, like the ones run here). The
            logits are then read from the cache even with ``recompute``, which still applies to attention maps.
    """
    spec = loaded.spec.to_json()
    cache = LogitsCache.for_model(results, loaded.checkpoint.sha256, spec)
    engine = ForwardEngine(loaded.module, options.engine)
    logits_options = options if computed_elsewhere is None else replace(options, recompute=False)
    outcomes, set_entries, computed = _stored_outcomes(engine, cache, sets, logits_options, model_name)
    computed = sorted({*computed, *(computed_elsewhere or ())})
    num_classes = int(loaded.spec.num_classes)
    adv_outcomes, adv_entries = _adversarial_outcomes(engine, cache, sets, logits_options, num_classes)
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
        metrics=(*metric_rows(outcomes, kd, options.bootstrap), *attention_rows),
        sets={**set_entries, **adv_entries},
        kd=kd.to_json(),
        efficiency=efficiency,
        scoring=scoring,
        versions=library_versions(),
        created=utc_now(),
        logits=cache.relative.as_posix(),
    )


def _stored_outcomes(
    engine: ForwardEngine, cache: LogitsCache, sets: ScoringSets, options: ScoreOptions, model_name: str
) -> tuple[dict[str, SetOutcome], dict[str, dict[str, Any]], list[str]]:
    outcomes, entries, computed = {}, {}, []
    with progress_bar(sets.total_images, model_name, enabled=options.progress) as bar:
        for name, stored in sets.sets.items():
            entry = entries[name] = stored_set_entry(stored)
            logits, fresh = cached_set_logits(
                cache, stored, lambda stored=stored: engine.set_logits(stored.images, bar.update), options.recompute
            )
            if fresh:
                computed.append(name)
            else:
                bar.update(stored.images.shape[0] * stored.images.shape[1])
            outcomes[name] = stored_outcome(name, entry, logits, _label_arrays(stored))
    return outcomes, entries, computed


def _adversarial_outcomes(
    engine: ForwardEngine, cache: LogitsCache, sets: ScoringSets, options: ScoreOptions, num_classes: int
) -> tuple[dict[str, SetOutcome], dict[str, dict[str, Any]]]:
    config = options.adversarial
    if not config.attacks:
        return {}, {}
    clean = sets.clean
    indices = adversarial_subset(clean.labels, config.n, config.seed)
    images, labels = np.asarray(clean.images[0][indices]), np.asarray(clean.labels[indices])
    outcomes, entries = {}, {}
    for attack in config.attacks:
        entry = adversarial_entry(
            config.settings(attack), config.eps, clean.sha256("images"), indices, options.engine.batch
        )
        levels, files = [], []
        with progress_bar(len(indices) * len(config.eps), attack.set_name, enabled=options.progress) as bar:
            for eps in config.eps:
                key = adversarial_key(entry, eps)
                load = cache.load_adversarial
                level = None if options.recompute else read_unless_damaged(load, attack.value, key, indices)
                if level is None:
                    logits = attack_logits(engine, images, labels, attack, eps, config, num_classes, bar.update)
                    cache.save_adversarial(attack.value, key, logits, indices, labels)
                    level = {"logits": logits, "indices": indices, "labels": labels}
                else:
                    bar.update(len(indices))
                levels.append(level)
                files.append(cache.adversarial_path(attack.value, key).name)
        entries[attack.set_name] = {**entry, "cache": files}
        outcomes[attack.set_name] = adversarial_outcome(attack.set_name, entry, levels)
    return outcomes, entries


def _label_arrays(stored: StoredSet) -> dict[str, np.ndarray]:
    return {name: np.asarray(stored.arrays[name]) for name in LABEL_ARRAYS if name in stored.arrays}
