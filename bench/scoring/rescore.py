"""Records rebuilt from their logits caches (no torch needed): the rows come from
:func:`libkd_bench.records.metric_rows.metric_rows`, as ``score``'s do, so rescoring an unchanged run rewrites
the same numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.metric_rows import metric_rows
from libkd_bench.records.run_record import RunRecord
from libkd_bench.scoring.attention import cached_alignment_rows
from libkd_bench.scoring.reference_runs import KdContext


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
    metrics = (
        *metric_rows(outcomes, bootstrap, **kd.reference_outcomes()),
        *cached_alignment_rows(record, results, kd, bootstrap),
    )
    return dataclasses.replace(record, metrics=metrics, kd=kd.to_json(), scoring=scoring)


def utc_now() -> str:
    """ISO-8601 UTC time to the second, as records store it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
