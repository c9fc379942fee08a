"""Metric rows of a run from its outcomes, and records rebuilt from their logits caches (no torch needed).

``score`` and ``rescore`` both call :func:`metric_rows`, so a record's metrics are a pure function of its
cached logits, labels, teacher/baseline runs and bootstrap settings: rescoring an unchanged run rewrites the
same numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.comparison import Role, comparison_metrics, transfer_metrics
from libkd_bench.records.run_record import MetricRow, RunRecord
from libkd_bench.records.summary import BootstrapPool, run_metrics
from libkd_bench.scoring.attention import cached_alignment_rows
from libkd_bench.scoring.reference_runs import KdContext


def metric_rows(outcomes: Mapping[str, SetOutcome], kd: KdContext, bootstrap: BootstrapConfig) -> tuple[MetricRow, ...]:
    """All rows of a run: its own metrics, then those against the teacher (with fidelity), the baseline, and bias
    transfer (beyond the recipe control's, when there is one)."""
    pool = BootstrapPool(bootstrap)
    rows = run_metrics(outcomes, pool)
    teacher = kd.teacher.outcomes if kd.teacher else None
    baseline = kd.baseline.outcomes if kd.baseline else None
    if teacher is not None:
        rows += comparison_metrics(outcomes, teacher, Role.TEACHER, pool)
    if baseline is not None:
        rows += comparison_metrics(outcomes, baseline, Role.BASELINE, pool)
    if teacher is not None and baseline is not None:
        control = kd.recipe_control.outcomes if kd.recipe_control else None
        rows += transfer_metrics(outcomes, teacher, baseline, pool, control)
    return tuple(rows)


def rescore_record(
    record: RunRecord,
    outcomes: Mapping[str, SetOutcome],
    kd: KdContext,
    bootstrap: BootstrapConfig,
    results: Path,
) -> RunRecord:
    """``record`` with every metric recomputed from ``outcomes`` and its cached attention maps; the rest is kept."""
    scoring = {
        **record.scoring,
        "bootstrap_resamples": bootstrap.resamples,
        "bootstrap_seed": bootstrap.seed,
        "confidence": bootstrap.confidence,
        "rescored": utc_now(),
    }
    metrics = (*metric_rows(outcomes, kd, bootstrap), *cached_alignment_rows(record, results, kd, bootstrap))
    return dataclasses.replace(record, metrics=metrics, kd=kd.to_json(), scoring=scoring)


def utc_now() -> str:
    """ISO-8601 UTC time to the second, as records store it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
