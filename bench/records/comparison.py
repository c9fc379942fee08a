"""Metrics that compare a student run with its teacher and baseline runs on the same images.

- ``error_consistency``: Cohen's kappa of per-image correctness against the teacher, per set and level
  (the whole-set row pools every level's images);
- ``mcnemar_p``: exact McNemar test against the teacher per level (and for sets without levels); a set with
  levels gets no whole-set p-value, since its levels reuse the same images and are not independent trials
  (the paired-bootstrap ``bias_ratio_diff_teacher`` interval answers that question instead);
- ``bias_ratio_diff_teacher`` / ``bias_ratio_diff_baseline``: student minus teacher/baseline bias ratio; an
  interval containing 0 means the difference is not significant at 95%;
- bias transfer on chance-corrected ratios with Fieller intervals, the teacher-baseline gap and its p-value,
  the recipe control's rows and the raw-ratio figures: see libkd_bench.records.transfer. Whether a transfer
  is identified (the gap significant after Holm's adjustment across a leaderboard's cells and at least
  the minimum effect) is decided where all cells are known, libkd_bench.reports.identification;
- fidelity against the teacher (top-1 agreement with its arithmetic bounds, KL(teacher ‖ student), per
  set, level and class): see libkd_bench.records.fidelity.

Every interval comes from the same paired resampling of images applied to all runs (see libkd_bench.metrics.bootstrap).
Only sets whose images are identical in the runs compared (same images key, labels and subset) are used.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping

import numpy as np

from libkd_bench.metrics.formulas import kappa_from_rates, mcnemar_p
from libkd_bench.metrics.outcomes import CLEAN, SetOutcome
from libkd_bench.records import transfer as _transfer
from libkd_bench.records.fidelity import fidelity_rows
from libkd_bench.records.run_record import MetricRow
from libkd_bench.records.summary import WHOLE_SET, BootstrapPool, accuracy_summary, levels_of, metric_row


class Role(str, enum.Enum):
    """What a reference run is to the student."""

    TEACHER = "teacher"
    BASELINE = "baseline"
    RECIPE_CONTROL = "recipe-control"  # the student's architecture trained with the teacher's data and recipe


def same_images(a: SetOutcome, b: SetOutcome) -> bool:
    """True when two outcomes were measured on the same images, labels, levels and subset."""
    if a.images_key != b.images_key or a.predicted.shape != b.predicted.shape or a.levels != b.levels:
        return False
    if not np.array_equal(a.labels, b.labels):
        return False
    if (a.indices is None) != (b.indices is None):
        return False
    return a.indices is None or np.array_equal(a.indices, b.indices)


def comparable_sets(student: Mapping[str, SetOutcome], *others: Mapping[str, SetOutcome]) -> list[str]:
    """Student set names (in order) that every other run measured on the same images; [] when clean differs.

    External sets (not paired with the clean split) are left out: their ratios rest on other images than clean.
    """
    if not all(CLEAN in run and same_images(student[CLEAN], run[CLEAN]) for run in (student, *others)):
        return []
    return [
        name
        for name, outcome in student.items()
        if outcome.paired_with_clean and all(name in o and same_images(outcome, o[name]) for o in others)
    ]


def comparison_metrics(
    student: Mapping[str, SetOutcome], reference: Mapping[str, SetOutcome], role: Role | str, pool: BootstrapPool
) -> list[MetricRow]:
    """Rows comparing ``student`` with a teacher (kappa, McNemar, ratio difference) or a baseline (difference)."""
    role = Role(role)
    rows: list[MetricRow | None] = []
    for name in comparable_sets(student, reference):
        mine, theirs = student[name], reference[name]
        if role is Role.TEACHER:
            rows.extend(_agreement_rows(mine, theirs, pool))
            rows.extend(fidelity_rows(mine, theirs, pool))
        if name != CLEAN:
            rows.extend(_ratio_difference_rows(mine, theirs, student[CLEAN], reference[CLEAN], role, pool))
    return [row for row in rows if row is not None]


def transfer_metrics(
    student: Mapping[str, SetOutcome],
    teacher: Mapping[str, SetOutcome],
    baseline: Mapping[str, SetOutcome],
    pool: BootstrapPool,
    recipe_control: Mapping[str, SetOutcome] | None = None,
) -> list[MetricRow]:
    """Bias-transfer rows (libkd_bench.records.transfer) on the sets all runs measured on the same images.

    The recipe control's rows are written on the sets it shares with the other three; the rest do not depend
    on it.
    """
    shared = comparable_sets(student, teacher, baseline)
    rows = _transfer.transfer_metrics(student, teacher, baseline, pool, sets=shared)
    if recipe_control is None:
        return rows
    with_control = set(comparable_sets(student, teacher, baseline, recipe_control))
    control_rows = _transfer.transfer_metrics(
        student, teacher, baseline, pool, recipe_control, sets=[name for name in shared if name in with_control]
    )
    control_metrics = {
        name
        for metric in (_transfer.RECIPE_CONTROL_TRANSFER, _transfer.BEYOND_RECIPE)
        for name in _transfer.fieller_metric_names(metric)
    }
    return rows + [row for row in control_rows if row.metric in control_metrics]


def _agreement_rows(mine: SetOutcome, theirs: SetOutcome, pool: BootstrapPool) -> Iterator[MetricRow | None]:
    boot = pool.get(mine.n)
    mine_correct, their_correct = mine.correct.astype(np.float64), theirs.correct.astype(np.float64)
    for level in levels_of(mine):
        chosen = slice(None) if level == WHOLE_SET else slice(level - 1, level)
        a, b = mine_correct[chosen], their_correct[chosen]
        per_image = np.stack([a.mean(axis=0), b.mean(axis=0), (a == b).mean(axis=0)], axis=1)  # (N, 3)
        point = kappa_from_rates(*per_image.mean(axis=0))
        samples = kappa_from_rates(*boot.means(per_image).T)
        yield metric_row(mine, level, "error_consistency", float(point), samples, boot, mine.n)
        if level != WHOLE_SET or not mine.levels:
            p_value = mcnemar_p(a[0] > 0, b[0] > 0)
            yield MetricRow(mine.name, level or None, mine.level_label(level), "mcnemar_p", p_value, None, None, mine.n)


def _ratio_difference_rows(
    mine: SetOutcome,
    theirs: SetOutcome,
    my_clean: SetOutcome,
    their_clean: SetOutcome,
    role: Role,
    pool: BootstrapPool,
) -> Iterator[MetricRow | None]:
    boot = pool.get(mine.n)
    my_summary = accuracy_summary(mine, my_clean, pool)
    their_summary = accuracy_summary(theirs, their_clean, pool)
    for level in levels_of(mine):
        (my_point, my_samples), (their_point, their_samples) = my_summary.ratio(level), their_summary.ratio(level)
        metric = f"bias_ratio_diff_{role.value}"
        yield metric_row(mine, level, metric, my_point - their_point, my_samples - their_samples, boot, mine.n)
