"""Confidence sets for a ratio of two paired differences (Fieller 1954), the delta method, and a normal-test p.

Bias transfer is ``theta = num / den`` with num = student - baseline and den = teacher - baseline, three
quantities measured on the same images. A percentile bootstrap of the ratio misbehaves when ``den`` can be near
0: resamples with a tiny denominator throw the ratio to +-infinity and the interval says little. Fieller's
method instead inverts the test of ``num - theta den = 0``, which is linear in the data for every theta:

    {theta : (num - theta den)^2 <= z^2 (v_nn - 2 theta v_nd + theta^2 v_dd)}

with the variances and covariance ``v`` of (num, den) taken from the paired bootstrap. The set is

- an interval (:attr:`IntervalKind.BOUNDED`) when den differs from 0 at the chosen level (den^2 > z^2 v_dd);
- the complement of an interval, (-inf, low] u [high, inf) (:attr:`IntervalKind.EXCLUSIVE`), or
- the whole line (:attr:`IntervalKind.UNBOUNDED`) when it does not: the data then cannot bound the ratio, and
  no number describes the uncertainty.

When den is many standard errors from 0 the Fieller interval equals the delta-method interval
``theta +- z se`` with ``se^2 = (v_nn - 2 theta v_nd + theta^2 v_dd) / den^2``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


class IntervalKind(str, enum.Enum):
    """Shape of a confidence set on the real line."""

    BOUNDED = "bounded"  # [low, high]
    EXCLUSIVE = "exclusive"  # (-inf, low] u [high, inf)
    UNBOUNDED = "unbounded"  # the whole line


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio of two differences with its Fieller confidence set.

    Attributes:
        value: num / den (NaN when den is 0).
        kind: shape of the confidence set.
        low, high: interval ends when bounded; the ends of the excluded gap when exclusive; None when unbounded.
        den_z: den / its standard error, how far the denominator is from 0 (the test behind the set's shape).
    """

    value: float
    kind: IntervalKind
    low: float | None
    high: float | None
    den_z: float


def paired_covariance(num_samples: np.ndarray, den_samples: np.ndarray) -> tuple[float, float, float] | None:
    """(v_nn, v_nd, v_dd) of resampled numerators and denominators (B,), over resamples where both are finite.

    None when fewer than two resamples are defined.
    """
    num_samples, den_samples = np.asarray(num_samples, np.float64), np.asarray(den_samples, np.float64)
    defined = np.isfinite(num_samples) & np.isfinite(den_samples)
    if defined.sum() < 2:
        return None
    cov = np.cov(np.stack([num_samples[defined], den_samples[defined]]), ddof=1)
    return float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])


def critical_value(confidence: float) -> float:
    """Two-sided standard-normal quantile: 1.96 for 95%."""
    return float(norm.ppf(0.5 + confidence / 2.0))


def fieller_interval(
    num: float, den: float, covariance: tuple[float, float, float], confidence: float = 0.95
) -> RatioEstimate:
    """Fieller confidence set of ``num / den`` given the (co)variances ``(v_nn, v_nd, v_dd)``."""
    v_nn, v_nd, v_dd = covariance
    z2 = critical_value(confidence) ** 2
    value = num / den if den != 0 else float("nan")
    den_z = abs(den) / np.sqrt(v_dd) if v_dd > 0 else (np.inf if den != 0 else 0.0)
    # a theta^2 + b theta + c <= 0
    a = den * den - z2 * v_dd
    b = -2.0 * (num * den - z2 * v_nd)
    c = num * num - z2 * v_nn
    disc = b * b - 4.0 * a * c
    if a > 0:
        root = np.sqrt(max(disc, 0.0))
        low, high = (-b - root) / (2.0 * a), (-b + root) / (2.0 * a)
        return RatioEstimate(value, IntervalKind.BOUNDED, float(low), float(high), float(den_z))
    if a < 0 and disc > 0:
        root = np.sqrt(disc)
        ends = sorted(((-b - root) / (2.0 * a), (-b + root) / (2.0 * a)))
        return RatioEstimate(value, IntervalKind.EXCLUSIVE, float(ends[0]), float(ends[1]), float(den_z))
    return RatioEstimate(value, IntervalKind.UNBOUNDED, None, None, float(den_z))


def delta_interval(
    num: float, den: float, covariance: tuple[float, float, float], confidence: float = 0.95
) -> tuple[float, float]:
    """First-order (delta-method) interval of ``num / den``: theta +- z se; meaningless when den is near 0."""
    v_nn, v_nd, v_dd = covariance
    theta = num / den
    se = np.sqrt(max(v_nn - 2.0 * theta * v_nd + theta * theta * v_dd, 0.0)) / abs(den)
    z = critical_value(confidence)
    return float(theta - z * se), float(theta + z * se)


def normal_p_value(estimate: float, samples: np.ndarray) -> float | None:
    """Two-sided p of ``estimate = 0`` by a normal approximation with the bootstrap standard error.

    p = 2 (1 - Phi(|estimate| / sd(samples))), over the finite resamples; None when fewer than two are finite.
    A zero standard error gives p = 1 for a zero estimate and 0 otherwise. The same standard error decides the
    shape of :func:`fieller_interval`, so a gap significant at level 1 - confidence always has a bounded
    transfer interval.
    """
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size < 2 or not np.isfinite(estimate):
        return None
    sd = float(samples.std(ddof=1))
    if sd == 0.0:
        return 1.0 if estimate == 0.0 else 0.0
    return float(2.0 * norm.sf(abs(estimate) / sd))
