"""Every metric row of a run, assembled in one place from its outcomes and those of its reference runs.

``score``, ``rescore`` and the Python API all call :func:`metric_rows`, so a record's metrics are a pure function
of its cached logits, labels, teacher/baseline/recipe-control outcomes and bootstrap settings: rescoring an
unchanged run rewrites the same numbers. The rows come, in this order, from:

- :func:`~libkd_bench.records.summary.run_metrics`: the run's own sets (accuracy, bias ratio, chance-corrected
  ratio, shape bias, prediction spread);
- :func:`~libkd_bench.records.corruption_summary.corruption_rows`: the CIFAR-10-C family's means, when all 15
  corruption sets were scored;
- :func:`~libkd_bench.records.comparison.comparison_metrics`: against the teacher (agreement, kappa, McNemar,
  fidelity, ratio difference) and against the baseline (ratio difference);
- :func:`~libkd_bench.records.comparison.transfer_metrics`: bias transfer, beyond the recipe control's when one is
  given.

Attention-alignment rows need the cached attention maps and are added by the scoring stage
(:func:`libkd_bench.scoring.attention.cached_alignment_rows`); seed groups are pooled at report time
(:mod:`libkd_bench.records.seed_groups`).
"""

from __future__ import annotations

from collections.abc import Mapping

from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import CLEAN, SetOutcome
from libkd_bench.records.comparison import Role, comparison_metrics, transfer_metrics
from libkd_bench.records.corruption_summary import corruption_rows
from libkd_bench.records.run_record import MetricRow
from libkd_bench.records.summary import BootstrapPool, run_metrics

Outcomes = Mapping[str, SetOutcome]


def metric_rows(
    outcomes: Outcomes,
    bootstrap: BootstrapConfig,
    *,
    teacher: Outcomes | None = None,
    baseline: Outcomes | None = None,
    recipe_control: Outcomes | None = None,
) -> tuple[MetricRow, ...]:
    """All rows of a run (see the module docstring for their sources and order); one bootstrap pool is shared,
    so every set of one image count is resampled with the same draws."""
    if recipe_control is not None and (teacher is None or baseline is None):
        raise ValueError("a recipe control needs the teacher and the baseline")
    pool = BootstrapPool(bootstrap)
    rows = run_metrics(outcomes, pool)
    rows += corruption_rows(outcomes, outcomes[CLEAN], pool)
    if teacher is not None:
        rows += comparison_metrics(outcomes, teacher, Role.TEACHER, pool)
    if baseline is not None:
        rows += comparison_metrics(outcomes, baseline, Role.BASELINE, pool)
    if teacher is not None and baseline is not None:
        rows += transfer_metrics(outcomes, teacher, baseline, pool, recipe_control)
    return tuple(rows)
