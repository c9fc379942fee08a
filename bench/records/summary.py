"""One run's metric rows from its set outcomes: accuracy, bias ratio and shape bias, with paired-bootstrap intervals.

Rows follow the run-record conventions: a set with levels gets one row per level (``severity`` = 1-based
level) and one for the whole set (``severity`` None: the mean accuracy over levels, and that mean over clean
accuracy); a set without levels gets only the whole-set rows. Adversarial pseudo-sets are ratioed against
clean accuracy on their own image subset; external sets (not drawn from the clean split) against clean accuracy
on the whole split, unpaired (:func:`unpaired_accuracy_summary`). A run scored on all 15 ``corruption-*`` sets
also gets the family's means as the pseudo-set ``corruptions`` (:mod:`libkd_bench.records.corruption_summary`,
added by :mod:`libkd_bench.records.metric_rows`, which assembles every row of a run).
``bias_ratio_cc`` is corrected for the run's own chance on each set and on clean (predicted share x label share,
:func:`libkd_bench.metrics.chance.chance_of_run`), resampled with the images. Undefined values are left out,
never written as NaN.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from libkd_bench.metrics.bootstrap import BootstrapConfig, PairedBootstrap
from libkd_bench.metrics.chance import chance_of_run
from libkd_bench.metrics.formulas import (
    chance_corrected_ratio_from_rates,
    chance_corrected_shape_bias_from_rates,
    chance_rate_from_shares,
    class_indicators,
    class_mean_from_counts,
    ratio_from_accuracies,
    shape_decisions,
)
from libkd_bench.metrics.outcomes import CLEAN, SetOutcome
from libkd_bench.records.run_record import MetricRow

WHOLE_SET = 0  # level number used internally for "the set as a whole" (severity None in rows)


class BootstrapPool:
    """One :class:`PairedBootstrap` per image count, shared by every set and run summarised together."""

    def __init__(self, config: BootstrapConfig) -> None:
        self.config = config
        self._by_n: dict[int, PairedBootstrap] = {}

    def get(self, n: int) -> PairedBootstrap:
        if n not in self._by_n:
            self._by_n[n] = PairedBootstrap(n, self.config)
        return self._by_n[n]


@dataclass(frozen=True)
class AccuracySummary:
    """Point and resampled accuracies (and chance accuracies) of one outcome and of clean on the same images.

    Attributes:
        level_points: (S,) accuracy per level.
        level_samples: (B, S) resampled accuracy per level.
        clean_point: clean accuracy on the same images.
        clean_samples: (B,) resampled clean accuracy, on the same resamples.
        chance_points: (S,) chance accuracy of the run per level (:func:`chance_of_run`).
        chance_samples: (B, S) resampled chance accuracy per level.
        clean_chance_point: chance accuracy of the run on clean, on the same images.
        clean_chance_samples: (B,) resampled clean chance accuracy.
    """

    level_points: np.ndarray
    level_samples: np.ndarray
    clean_point: float
    clean_samples: np.ndarray
    chance_points: np.ndarray
    chance_samples: np.ndarray
    clean_chance_point: float
    clean_chance_samples: np.ndarray

    def accuracy(self, level: int) -> tuple[float, np.ndarray]:
        """(point, samples) of one level, or of the mean over levels for ``WHOLE_SET``."""
        return _level_of(self.level_points, self.level_samples, level)

    def chance(self, level: int) -> tuple[float, np.ndarray]:
        """(point, samples) of the chance accuracy of one level, or its mean over levels for ``WHOLE_SET``."""
        return _level_of(self.chance_points, self.chance_samples, level)

    def chance_corrected_ratio(self, level: int) -> tuple[float, np.ndarray]:
        """(point, samples) of (accuracy(level) - chance(level)) / (accuracy(clean) - chance(clean))."""
        (point, samples), (chance, chance_samples) = self.accuracy(level), self.chance(level)
        return (
            float(chance_corrected_ratio_from_rates(point, chance, self.clean_point, self.clean_chance_point)),
            chance_corrected_ratio_from_rates(samples, chance_samples, self.clean_samples, self.clean_chance_samples),
        )

    def ratio(self, level: int) -> tuple[float, np.ndarray]:
        """(point, samples) of accuracy(level) / accuracy(clean); NaN where clean accuracy is 0."""
        point, samples = self.accuracy(level)
        return (
            float(ratio_from_accuracies(point, self.clean_point)),
            ratio_from_accuracies(samples, self.clean_samples),
        )


def _level_of(points: np.ndarray, samples: np.ndarray, level: int) -> tuple[float, np.ndarray]:
    if level == WHOLE_SET:
        return float(points.mean()), samples.mean(axis=1)
    return float(points[level - 1]), samples[:, level - 1]


def accuracy_summary(outcome: SetOutcome, clean: SetOutcome, pool: BootstrapPool) -> AccuracySummary:
    if not outcome.paired_with_clean:
        return unpaired_accuracy_summary(outcome, clean, pool)
    boot = pool.get(outcome.n)
    correct = outcome.correct.astype(np.float64)  # (S, N)
    clean_correct = clean_correct_on(outcome, clean).astype(np.float64)
    chance_points, chance_samples = chance_of_run(outcome.predicted, outcome.labels, outcome.num_classes, boot)
    clean_predicted = clean.predicted[0] if outcome.indices is None else clean.predicted[0][outcome.indices]
    clean_labels = clean.labels if outcome.indices is None else clean.labels[outcome.indices]
    clean_chance_point, clean_chance_samples = chance_of_run(clean_predicted, clean_labels, clean.num_classes, boot)
    return AccuracySummary(
        level_points=correct.mean(axis=1),
        level_samples=boot.means(correct.T),
        clean_point=float(clean_correct.mean()),
        clean_samples=boot.means(clean_correct),
        chance_points=chance_points,
        chance_samples=chance_samples,
        clean_chance_point=float(clean_chance_point[0]),
        clean_chance_samples=clean_chance_samples[:, 0],
    )


def unpaired_accuracy_summary(outcome: SetOutcome, clean: SetOutcome, pool: BootstrapPool) -> AccuracySummary:
    """Summary of an external set (not drawn from the clean split) against clean accuracy on the whole split.

    The set's images and the clean images are resampled independently: the set side as if the set were its
    own clean split, the clean side (every ``clean_*`` field) from clean's own summary, its resamples shifted
    by one so that resample b of the set never shares weights with resample b of clean (they would when both
    hold the same number of images). Intervals of the ratio therefore carry both sources of noise.
    """
    own = replace(outcome, paired_with_clean=True)
    mine = accuracy_summary(own, own, pool)  # its clean_* fields are replaced below
    theirs = accuracy_summary(clean, clean, pool)
    clean_side = {
        f.name: np.roll(value, 1, axis=0) if isinstance(value := getattr(theirs, f.name), np.ndarray) else value
        for f in fields(AccuracySummary)
        if f.name.startswith("clean_")
    }
    return replace(mine, **clean_side)


def clean_correct_on(outcome: SetOutcome, clean: SetOutcome) -> np.ndarray:
    """Clean per-image correctness on the images ``outcome`` was measured on (its subset, if any)."""
    correct = clean.correct[0]
    if outcome.indices is not None:
        return correct[outcome.indices]
    if outcome.n != clean.n:
        raise ValueError(f"{outcome.name} has {outcome.n} images but clean {clean.n}")
    return correct


def levels_of(outcome: SetOutcome) -> list[int]:
    """Levels that get rows: every 1-based level then the whole set, or only the whole set."""
    return [*range(1, len(outcome.levels) + 1), WHOLE_SET] if outcome.levels else [WHOLE_SET]


def metric_row(
    outcome: SetOutcome, level: int, metric: str, point: float, samples: np.ndarray, boot: PairedBootstrap, n: int
) -> MetricRow | None:
    """A row with its percentile interval, or None when the estimate itself is undefined."""
    if not np.isfinite(point):
        return None
    low, high = boot.interval(samples)
    return MetricRow(
        set=outcome.name,
        severity=level or None,
        severity_label=outcome.level_label(level),
        metric=metric,
        value=float(point),
        ci_low=low,
        ci_high=high,
        n=int(n),
    )


def run_metrics(outcomes: Mapping[str, SetOutcome], pool: BootstrapPool) -> list[MetricRow]:
    """Every row of the run's own sets, in the order of ``outcomes`` (which must hold ``clean``); the family means
    and the rows against reference runs are added by :func:`libkd_bench.records.metric_rows.metric_rows`."""
    if CLEAN not in outcomes:
        raise ValueError("run metrics need the clean outcome")
    clean = outcomes[CLEAN]
    rows: list[MetricRow | None] = []
    for outcome in outcomes.values():
        boot = pool.get(outcome.n)
        summary = accuracy_summary(outcome, clean, pool)
        for level in levels_of(outcome):
            rows.append(metric_row(outcome, level, "accuracy", *summary.accuracy(level), boot, outcome.n))
            if outcome.name != CLEAN:
                rows.append(metric_row(outcome, level, "bias_ratio", *summary.ratio(level), boot, outcome.n))
                cc = summary.chance_corrected_ratio(level)
                rows.append(metric_row(outcome, level, "bias_ratio_cc", *cc, boot, outcome.n))
        rows.extend(_prediction_spread_rows(outcome, boot))
        if outcome.shape_labels is not None:
            rows.extend(_shape_bias_rows(outcome, boot))
            rows.extend(_chance_corrected_shape_rows(outcome, boot))
    return [row for row in rows if row is not None]


def _prediction_spread_rows(outcome: SetOutcome, boot: PairedBootstrap) -> Iterator[MetricRow | None]:
    """Per level: the most frequent predicted class (``top_class``) and its share of the predictions.

    A set on which one class takes most predictions measures that default more than the cue; reports flag it.
    """
    for level in levels_of(outcome):
        chosen = outcome.predicted if level == WHOLE_SET else outcome.predicted[level - 1 : level]
        one_hot = np.stack([class_indicators(p, outcome.num_classes) for p in chosen]).mean(axis=0)  # (N, K)
        shares = one_hot.mean(axis=0)
        top = int(shares.argmax())
        yield metric_row(outcome, level, "top_class_share", shares[top], boot.means(one_hot[:, top]), boot, outcome.n)
        yield MetricRow(
            outcome.name, level or None, outcome.level_label(level), "top_class", top, None, None, outcome.n
        )


def _chance_corrected_shape_rows(outcome: SetOutcome, boot: PairedBootstrap) -> Iterator[MetricRow | None]:
    """Per level: the share of conflict images decided by either cue, and the chance-corrected shape bias."""
    conflict = (outcome.shape_labels != outcome.texture_labels).astype(np.float64)
    n_conflict = int(conflict.sum())
    if n_conflict == 0:
        return
    k = outcome.num_classes
    shape_w = class_indicators(outcome.shape_labels, k) * conflict[:, None]
    texture_w = class_indicators(outcome.texture_labels, k) * conflict[:, None]
    shape_share, texture_share = shape_w.sum(axis=0) / n_conflict, texture_w.sum(axis=0) / n_conflict
    for level in levels_of(outcome):
        chosen = outcome.predicted if level == WHOLE_SET else outcome.predicted[level - 1 : level]
        slabs = len(chosen)
        predicted = np.stack([class_indicators(p, k) for p in chosen]).sum(axis=0) * conflict[:, None]  # (N, K)
        shape_hit = (predicted * shape_w).sum(axis=1)
        texture_hit = (predicted * texture_w).sum(axis=1)
        per_image = np.column_stack([shape_hit, texture_hit, conflict * slabs, predicted])  # sums over slabs
        point = per_image.sum(axis=0)
        samples = boot.sums(per_image)

        def rates(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            decisions = totals[..., 2]
            predicted_share = totals[..., 3:] / decisions[..., None]
            return totals[..., 0] / decisions, totals[..., 1] / decisions, predicted_share

        with np.errstate(divide="ignore", invalid="ignore"):
            s_point, t_point, q_point = rates(point)
            s_samples, t_samples, q_samples = rates(samples)
            bias_point = chance_corrected_shape_bias_from_rates(
                s_point,
                t_point,
                chance_rate_from_shares(q_point, shape_share),
                chance_rate_from_shares(q_point, texture_share),
            )
            bias_samples = chance_corrected_shape_bias_from_rates(
                s_samples,
                t_samples,
                chance_rate_from_shares(q_samples, shape_share),
                chance_rate_from_shares(q_samples, texture_share),
            )
        n = n_conflict * slabs
        yield metric_row(outcome, level, "decision_rate", s_point + t_point, s_samples + t_samples, boot, n)
        yield metric_row(outcome, level, "shape_bias_cc", bias_point, bias_samples, boot, n)


def _shape_bias_rows(outcome: SetOutcome, boot: PairedBootstrap) -> Iterator[MetricRow | None]:
    """Pooled and class-mean shape bias per level (and pooled over levels for the whole set)."""
    shape_hit, cue_hit = shape_decisions(outcome.predicted, outcome.shape_labels, outcome.texture_labels)
    one_hot = class_indicators(outcome.shape_labels, outcome.num_classes)
    for level in levels_of(outcome):
        chosen = slice(None) if level == WHOLE_SET else slice(level - 1, level)
        shape = shape_hit[chosen].sum(axis=0).astype(np.float64)  # (N,) shape decisions per image
        cue = cue_hit[chosen].sum(axis=0).astype(np.float64)
        decisions = int(cue.sum())
        pooled_point = ratio_from_accuracies(shape.sum(), cue.sum())
        pooled_samples = ratio_from_accuracies(boot.sums(shape), boot.sums(cue))
        yield metric_row(outcome, level, "shape_bias", pooled_point, pooled_samples, boot, decisions)
        class_point = class_mean_from_counts(shape @ one_hot, cue @ one_hot)
        class_samples = class_mean_from_counts(boot.sums(shape[:, None] * one_hot), boot.sums(cue[:, None] * one_hot))
        yield metric_row(outcome, level, "shape_bias_class_mean", class_point, class_samples, boot, decisions)
