"""The statistics validity checks are judged by: chance from class frequencies, dependence tests, intervals.

"At chance" is a statement about dependence, not about one accuracy: a model that answers "cat" for every image
sits at the share of cats whatever it sees, and one that reads a cue backwards sits below 1/K. So chance here is
what a predictor with the same class frequencies would hit if it ignored the image (sum over classes of predicted
share x label share, as in Cohen's kappa); the excess over it is the cue a model reads; and whether predictions
depend on the labels at all is a permutation test of the chi-square statistic of their contingency table, which
needs no minimum cell count. Intervals are paired percentile bootstraps over images
(:class:`~libkd_bench.metrics.bootstrap.PairedBootstrap`), so a difference of two readings on the same images
keeps their pairing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from libkd_bench.metrics.bootstrap import BootstrapConfig, PairedBootstrap
from libkd_bench.metrics.chance import chance_of_run
from libkd_bench.metrics.formulas import class_indicators

Z95 = 1.96


@dataclass(frozen=True)
class Estimate:
    """A point value with its 95 % interval (bounds None when undefined on too many resamples)."""

    value: float
    low: float | None
    high: float | None
    n: int

    def below(self, bound: float) -> bool:
        """The whole interval lies at or below ``bound``."""
        return self.high is not None and self.high <= bound

    def above(self, bound: float) -> bool:
        """The whole interval lies strictly above ``bound``."""
        return self.low is not None and self.low > bound


def estimate(point: float, samples: np.ndarray, boot: PairedBootstrap) -> Estimate:
    low, high = boot.interval(samples)
    return Estimate(float(point), low, high, boot.n)


def bootstrap_for(n: int, config: BootstrapConfig | None = None) -> PairedBootstrap:
    """The paired bootstrap of ``n`` images, made once per (n, config): its weights depend on nothing else."""
    return _bootstrap(n, config or BootstrapConfig())


@functools.lru_cache(maxsize=16)
def _bootstrap(n: int, config: BootstrapConfig) -> PairedBootstrap:
    return PairedBootstrap(n, config)


def excess_over_chance(predicted: np.ndarray, labels: np.ndarray, num_classes: int, boot: PairedBootstrap) -> Estimate:
    """Accuracy minus the chance a frequency-matched guesser would have
    (:func:`~libkd_bench.metrics.chance.chance_of_run`), averaged over every level of ``predicted``.

    Args:
        predicted: int (S, N) or (N,) predictions.
        labels: int (N,).
    """
    predicted = np.atleast_2d(predicted)
    hit = (predicted == labels).mean(axis=0).astype(np.float64)
    chance_point, chance_samples = chance_of_run(predicted, labels, num_classes, boot)
    return estimate(float(hit.mean() - chance_point.mean()), boot.means(hit) - chance_samples.mean(axis=1), boot)


def accuracy(predicted: np.ndarray, labels: np.ndarray, boot: PairedBootstrap) -> Estimate:
    hit = (np.atleast_2d(predicted) == labels).mean(axis=0).astype(np.float64)
    return estimate(float(hit.mean()), boot.means(hit), boot)


def mean_difference(a: np.ndarray, b: np.ndarray, boot: PairedBootstrap) -> Estimate:
    """Mean of per-image ``a - b`` (paired), e.g. the accuracy gained by one reading over another."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return estimate(float(diff.mean()), boot.means(diff), boot)


def top_class_share(predicted: np.ndarray, num_classes: int, boot: PairedBootstrap) -> Estimate:
    """Share of the predictions taken by the most predicted class."""
    q = np.mean([class_indicators(p, num_classes) for p in np.atleast_2d(predicted)], axis=0)
    top = int(q.mean(axis=0).argmax())
    return estimate(float(q[:, top].mean()), boot.means(q[:, top]), boot)


def chi_square(table: np.ndarray) -> np.ndarray:
    """Pearson's statistic of contingency tables (..., R, C); empty rows and columns are left out."""
    table = np.asarray(table, dtype=np.float64)
    total = table.sum(axis=(-1, -2), keepdims=True)
    expected = table.sum(axis=-1, keepdims=True) * table.sum(axis=-2, keepdims=True) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    return cells.sum(axis=(-1, -2))


def independence_p(
    predicted: np.ndarray, labels: np.ndarray, num_classes: int, rng: np.random.Generator, permutations: int = 999
) -> float:
    """Permutation p-value of "predictions do not depend on the labels", two-sided: reading a cue backwards
    (below chance) counts as dependence too.

    Two statistics share the permutations, Bonferroni-combined: the chi-square statistic of the contingency table
    (any dependence, e.g. a cue that maps classes onto other classes) and |accuracy - chance| (the dependence a
    classifier shows, far more powerful for it: the chi-square spreads it over 81 degrees of freedom). Each
    p = (1 + #{permuted >= observed}) / (1 + permutations), so it is never 0.
    """
    predicted, labels = np.asarray(predicted).ravel(), np.asarray(labels).ravel()
    if len(np.unique(predicted)) < 2 or len(np.unique(labels)) < 2:
        return 1.0  # one answer (or one class) carries no information about the other
    k = num_classes
    observed = chi_square(np.bincount(predicted * k + labels, minlength=k * k).reshape(k, k))
    shuffled = labels[np.argsort(rng.random((permutations, len(labels))), axis=1)]
    codes = predicted[None, :] * k + shuffled + (np.arange(permutations) * k * k)[:, None]
    tables = np.bincount(codes.ravel(), minlength=permutations * k * k).reshape(permutations, k, k)
    p_chi = (1 + int((chi_square(tables) >= observed - 1e-9).sum())) / (1 + permutations)
    chance = float(np.bincount(predicted, minlength=k) @ np.bincount(labels, minlength=k)) / len(labels) ** 2
    hits = np.abs((predicted == labels).mean() - chance)
    permuted_hits = np.abs((predicted[None, :] == shuffled).mean(axis=1) - chance)
    p_hits = (1 + int((permuted_hits >= hits - 1e-12).sum())) / (1 + permutations)
    return min(1.0, 2.0 * min(p_chi, p_hits))


def images_needed(margin: float, spread: float = 0.5) -> int:
    """Images for a 95 % interval of a share to be no wider than ``margin`` on each side (worst case 0.5)."""
    return math.ceil((Z95 * spread / margin) ** 2)


def corrected_shape_bias(
    predicted: np.ndarray, shape_labels: np.ndarray, texture_labels: np.ndarray, num_classes: int, boot: PairedBootstrap
) -> Estimate:
    """Chance-corrected shape bias with its interval (see :func:`corrected_shape_bias_samples`)."""
    return estimate(*corrected_shape_bias_samples(predicted, shape_labels, texture_labels, num_classes, boot), boot)


def shape_excess(
    predicted: np.ndarray, shape_labels: np.ndarray, texture_labels: np.ndarray, num_classes: int, boot: PairedBootstrap
) -> Estimate:
    """Share of conflict images predicted as their shape label minus its chance (predicted share x shape share)."""
    conflict = np.asarray(shape_labels) != np.asarray(texture_labels)
    return excess_over_chance(
        np.atleast_2d(predicted)[:, conflict],
        np.asarray(shape_labels)[conflict],
        num_classes,
        bootstrap_for(int(conflict.sum()), boot.config),
    )


def corrected_shape_bias_samples(
    predicted: np.ndarray, shape_labels: np.ndarray, texture_labels: np.ndarray, num_classes: int, boot: PairedBootstrap
) -> tuple[float, np.ndarray]:
    """Chance-corrected shape bias (:func:`~libkd_bench.metrics.formulas.chance_corrected_shape_bias_from_rates`) on
    conflict images, with its interval from the bootstrap of both hit rates and both chance levels together.

    Near zero excess on both cues the estimator jumps between 0 and 1 from resample to resample, so its interval
    spans nearly [0, 1] (or is undefined, None) and no interval-based bound can pass without a signal; see
    benchmarks/shape_bias_near_zero.py.
    """
    from libkd_bench.metrics.formulas import chance_corrected_shape_bias_from_rates

    predicted = np.atleast_2d(predicted)
    conflict = (np.asarray(shape_labels) != np.asarray(texture_labels)).astype(np.float64)
    q = np.mean([class_indicators(p, num_classes) for p in predicted], axis=0) * conflict[:, None]
    s = class_indicators(shape_labels, num_classes) * conflict[:, None]
    t = class_indicators(texture_labels, num_classes) * conflict[:, None]
    shape_hit = (predicted == shape_labels).mean(axis=0) * conflict
    texture_hit = (predicted == texture_labels).mean(axis=0) * conflict
    per_image = np.column_stack([shape_hit, texture_hit, conflict, q, s, t])

    def bias(m: np.ndarray) -> np.ndarray:
        k = num_classes
        with np.errstate(divide="ignore", invalid="ignore"):
            d = m[..., 2:3]
            q_, s_, t_ = m[..., 3 : 3 + k] / d, m[..., 3 + k : 3 + 2 * k] / d, m[..., 3 + 2 * k :] / d
            return chance_corrected_shape_bias_from_rates(
                m[..., 0] / d[..., 0], m[..., 1] / d[..., 0], (q_ * s_).sum(axis=-1), (q_ * t_).sum(axis=-1)
            )

    return float(bias(per_image.mean(axis=0))), bias(boot.means(per_image))
