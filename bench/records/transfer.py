"""Bias transfer of a student between its baseline and its teacher, on chance-corrected ratios, with Fieller sets.

For each non-clean set (whole-set rows) and the corrected ratios r = (acc - chance) / (clean - clean chance)
of the student s, baseline b and teacher t (chance: libkd_bench.metrics.chance):

- ``teacher_baseline_gap``: t - b, with its percentile interval, and ``teacher_baseline_gap_p``: its two-sided
  p-value by a normal approximation with the paired-bootstrap standard error (the leaderboard adjusts these
  across its cells by Holm's method, libkd_bench.reports.identification);
- ``bias_transfer``: (s - b) / (t - b) with a Fieller 95% interval from the paired-bootstrap covariance of
  (s - b, t - b) (libkd_bench.metrics.ratio_inference). When the set is not an interval the row is named
  ``bias_transfer_exclusive`` (the set is (-inf, ci_low] u [ci_high, inf): the interval ends are the ends of
  the excluded gap) or ``bias_transfer_unbounded`` (the whole line: no ends); ``value`` stays the point ratio,
  which reports then do not show;
- with a recipe control c (the student's architecture trained on the teacher's data and recipe, without KD):
  ``recipe_control_transfer`` = (c - b) / (t - b) and ``transfer_beyond_recipe`` = transfer(s) - transfer(c)
  = (s - c) / (t - b), each with its Fieller set named as above: what distillation adds beyond what the
  teacher's data and recipe alone give a model of the student's architecture;
- ``teacher_baseline_gap_raw`` and ``bias_transfer_raw``: the same on raw ratios acc / clean with percentile
  intervals, as in the reference study, for comparison only (their chance floors differ between runs).

Every interval uses the same paired resampling of images for all runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from libkd_bench.metrics.bootstrap import PairedBootstrap
from libkd_bench.metrics.formulas import bias_transfer_from_ratios
from libkd_bench.metrics.outcomes import CLEAN, SetOutcome
from libkd_bench.metrics.ratio_inference import IntervalKind, fieller_interval, normal_p_value, paired_covariance
from libkd_bench.records.run_record import MetricRow
from libkd_bench.records.summary import WHOLE_SET, BootstrapPool, accuracy_summary, metric_row

TRANSFER = "bias_transfer"
GAP = "teacher_baseline_gap"
GAP_P = "teacher_baseline_gap_p"
RECIPE_CONTROL_TRANSFER = "recipe_control_transfer"
BEYOND_RECIPE = "transfer_beyond_recipe"
EXCLUSIVE_SUFFIX = "_exclusive"
UNBOUNDED_SUFFIX = "_unbounded"
RAW_SUFFIX = "_raw"


def fieller_metric_names(metric: str) -> tuple[str, str, str]:
    """The row names of a Fieller estimate: bounded, complement of an interval, whole line."""
    return metric, metric + EXCLUSIVE_SUFFIX, metric + UNBOUNDED_SUFFIX


def transfer_metrics(
    student: Mapping[str, SetOutcome],
    teacher: Mapping[str, SetOutcome],
    baseline: Mapping[str, SetOutcome],
    pool: BootstrapPool,
    recipe_control: Mapping[str, SetOutcome] | None = None,
    sets: list[str] | None = None,
) -> list[MetricRow]:
    """The rows of the module docstring for every set in ``sets`` (names every run measured on the same images).

    Args:
        student, teacher, baseline: outcomes per set.
        pool: the shared resampling.
        recipe_control: outcomes of the recipe control run, or None.
        sets: set names to compare (the caller checks the images match); None: every student set but clean.
    """
    runs = {"s": student, "t": teacher, "b": baseline}
    if recipe_control is not None:
        runs["c"] = recipe_control
    rows: list[MetricRow | None] = []
    for name in sets if sets is not None else list(student):
        if name == CLEAN or not all(name in run for run in runs.values()):
            continue
        outcome = student[name]
        boot = pool.get(outcome.n)
        summaries = {key: accuracy_summary(run[name], run[CLEAN], pool) for key, run in runs.items()}
        corrected = {key: summary.chance_corrected_ratio(WHOLE_SET) for key, summary in summaries.items()}
        raw = {key: summary.ratio(WHOLE_SET) for key, summary in summaries.items()}
        compared = corrected_transfer_rows(outcome, corrected, boot, pool.config.confidence)
        if not compared:
            continue
        rows.extend(compared)
        rows.extend(_raw_rows(outcome, raw, boot))
    return [row for row in rows if row is not None]


def corrected_transfer_rows(
    outcome: SetOutcome, corrected: Mapping[str, tuple[float, np.ndarray]], boot: PairedBootstrap, confidence: float
) -> list[MetricRow]:
    """The gap, its p-value and the Fieller rows of one set from the chance-corrected ratios ``corrected``:
    ``{"s", "b", "t"[, "c"]: (point, resamples on the shared image resampling)}`` (the student's may be a seed
    group's mean with hierarchical resamples); empty when the gap is undefined."""
    (s, s_b), (b, b_b), (t, t_b) = corrected["s"], corrected["b"], corrected["t"]
    gap = metric_row(outcome, WHOLE_SET, GAP, t - b, t_b - b_b, boot, outcome.n)
    if gap is None:
        return []
    rows = [gap]
    p_value = normal_p_value(t - b, t_b - b_b)
    if p_value is not None:
        rows.append(MetricRow(outcome.name, None, "", GAP_P, p_value, None, None, outcome.n))
    rows.extend(fieller_rows(outcome, TRANSFER, (s - b, t - b), (s_b - b_b, t_b - b_b), confidence))
    if "c" in corrected:
        c, c_b = corrected["c"]
        rows.extend(fieller_rows(outcome, RECIPE_CONTROL_TRANSFER, (c - b, t - b), (c_b - b_b, t_b - b_b), confidence))
        rows.extend(fieller_rows(outcome, BEYOND_RECIPE, (s - c, t - b), (s_b - c_b, t_b - b_b), confidence))
    return rows


def fieller_rows(
    outcome: SetOutcome,
    metric: str,
    point: tuple[float, float],
    samples: tuple[np.ndarray, np.ndarray],
    confidence: float,
) -> Iterator[MetricRow]:
    """One row for ``num / den`` (``point``; resampled: ``samples``) named by the shape of its Fieller set (see
    :func:`fieller_metric_names`)."""
    (num, den), (num_samples, den_samples) = point, samples
    covariance = paired_covariance(num_samples, den_samples)
    if covariance is None or den == 0 or not np.isfinite(num) or not np.isfinite(den):
        return
    estimate = fieller_interval(num, den, covariance, confidence)
    bounded, exclusive, unbounded = fieller_metric_names(metric)
    name = {IntervalKind.BOUNDED: bounded, IntervalKind.EXCLUSIVE: exclusive, IntervalKind.UNBOUNDED: unbounded}
    yield MetricRow(outcome.name, None, "", name[estimate.kind], estimate.value, estimate.low, estimate.high, outcome.n)


def _raw_rows(
    outcome: SetOutcome, raw: Mapping[str, tuple[float, np.ndarray]], boot: PairedBootstrap
) -> Iterator[MetricRow | None]:
    (s, s_b), (b, b_b), (t, t_b) = raw["s"], raw["b"], raw["t"]
    yield metric_row(outcome, WHOLE_SET, GAP + RAW_SUFFIX, t - b, t_b - b_b, boot, outcome.n)
    point, samples = float(bias_transfer_from_ratios(s, b, t)), bias_transfer_from_ratios(s_b, b_b, t_b)
    yield metric_row(outcome, WHOLE_SET, TRANSFER + RAW_SUFFIX, point, samples, boot, outcome.n)
