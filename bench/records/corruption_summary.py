"""Aggregate rows of the ``corruptions`` family: mean corruption accuracy and its ratio to clean accuracy.

CIFAR-10-C's headline figure is the accuracy averaged over its 15 corruptions and 5 severities. A run scored
on all 15 ``corruption-*`` sets gets rows for the pseudo-set ``corruptions``: per severity (``severity`` 1-5,
the mean over the 15 corruptions at that severity) and for the whole family (``severity`` None, the mean over
all 75), each as ``accuracy``, ``bias_ratio`` (that mean / clean accuracy on the same images) and
``bias_ratio_cc`` (corrected for the run's chance on each set, libkd_bench.metrics.chance), with
paired-bootstrap intervals: image i's value is its mean
correctness over the corrupted copies, resampled together with its clean correctness. A run that lacks any
of the 15 sets (or has them on other images) gets no aggregate, since a mean over fewer corruptions is
another quantity; its per-set rows are there as for every set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from libkd_bench.datasets_gen.corruptions.table import CORRUPTION_SETS, FAMILY, SET_PREFIX, SEVERITIES
from libkd_bench.metrics.bootstrap import PairedBootstrap
from libkd_bench.metrics.chance import chance_of_run
from libkd_bench.metrics.formulas import chance_corrected_ratio_from_rates, ratio_from_accuracies
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.run_record import MetricRow

SEVERITY_PARAMETER = "severity"


def is_corruption_set(name: str) -> bool:
    """True for one of the family's ``corruption-*`` sets (not the ``corruptions`` aggregate)."""
    return name.startswith(SET_PREFIX)


class BootstrapSource(Protocol):
    def get(self, n: int) -> PairedBootstrap: ...


def family_outcomes(outcomes: Mapping[str, SetOutcome], clean: SetOutcome) -> list[SetOutcome] | None:
    """The 15 corruption outcomes when all are present with 5 levels on the clean images, else None."""
    found = [outcomes.get(name) for name in CORRUPTION_SETS]
    if any(outcome is None for outcome in found):
        return None
    for outcome in found:
        if (
            len(outcome.levels) != len(SEVERITIES)
            or outcome.indices is not None
            or not np.array_equal(outcome.labels, clean.labels)
        ):
            return None
    return found


def corruption_rows(outcomes: Mapping[str, SetOutcome], clean: SetOutcome, pool: BootstrapSource) -> list[MetricRow]:
    """The ``corruptions`` rows of one run (none unless all 15 sets were scored)."""
    family = family_outcomes(outcomes, clean)
    if family is None:
        return []
    n = clean.n
    boot = pool.get(n)
    chances = [chance_of_run(outcome.predicted, outcome.labels, outcome.num_classes, boot) for outcome in family]
    chance_per_level = np.mean([point for point, _ in chances], axis=0)  # (S,) mean over the 15 corruptions
    chance_level_samples = np.mean([samples for _, samples in chances], axis=0)  # (B, S)
    clean_chance, clean_chance_samples = chance_of_run(clean.predicted[0], clean.labels, clean.num_classes, boot)
    clean_chance_point = float(clean_chance[0])
    per_image = np.mean([outcome.correct for outcome in family], axis=0, dtype=np.float64)  # (S, N)
    level_samples = boot.means(per_image.T)  # (B, S)
    clean_correct = clean.correct[0].astype(np.float64)
    clean_point, clean_samples = float(clean_correct.mean()), boot.means(clean_correct)
    rows = []
    for level in (*SEVERITIES, None):
        if level is None:
            point, samples = float(per_image.mean()), level_samples.mean(axis=1)
            chance, chance_samples = float(chance_per_level.mean()), chance_level_samples.mean(axis=1)
        else:
            point, samples = float(per_image[level - 1].mean()), level_samples[:, level - 1]
            chance, chance_samples = float(chance_per_level[level - 1]), chance_level_samples[:, level - 1]
        label = f"{SEVERITY_PARAMETER}={level}" if level is not None else ""
        values = {
            "accuracy": (point, samples),
            "bias_ratio": (
                float(ratio_from_accuracies(point, clean_point)),
                ratio_from_accuracies(samples, clean_samples),
            ),
            "bias_ratio_cc": (
                float(chance_corrected_ratio_from_rates(point, chance, clean_point, clean_chance_point)),
                chance_corrected_ratio_from_rates(samples, chance_samples, clean_samples, clean_chance_samples[:, 0]),
            ),
        }
        for metric, (value, resampled) in values.items():
            if np.isfinite(value):
                low, high = boot.interval(resampled)
                rows.append(MetricRow(FAMILY, level, label, metric, value, low, high, n))
    return rows
