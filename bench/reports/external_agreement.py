"""External agreement: do our shape sets rank a panel of models the way hand-made drawings (CIFAR-10G) do?

Our ``shape`` silhouettes come out of a segmentation of the clean images; if they measure shape, models that
recognise CIFAR-10G's hand-drawn silhouettes should also do well on them, and the known-answer controls should
read in their known order on both. For each pair (``shape`` vs ``cifar10g-silhouettes``, ``shape-edges`` vs
``cifar10g-line-drawings``) this module gathers each model's accuracy on both sets with its interval, the
Spearman rank correlation across models (with and without the controls, since their extreme positions alone
can carry a correlation), and the controls' expected order:

- ``control-shape`` highest: no other model lies above it with non-overlapping 95% intervals, on either set;
- ``control-colour`` at chance: its interval contains chance (1/K) on both sets.

A pure function of run records (``score`` writes them); it reads nothing and prints nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from libkd_bench.records.run_record import MetricRow, RunRecord

PAIRS: tuple[tuple[str, str], ...] = (
    ("shape", "cifar10g-silhouettes"),
    ("shape-edges", "cifar10g-line-drawings"),
    ("shape-readable", "cifar10g-silhouettes"),  # opt-in: a row only where some record scored it
)
SHAPE_CONTROL = "control-shape"
COLOUR_CONTROL = "control-colour"
MIN_MODELS = 3  # a rank correlation over fewer models is not reported


@dataclass(frozen=True)
class Accuracy:
    """A whole-set accuracy with its 95% interval (None when the record has none) and image count."""

    value: float
    ci_low: float | None
    ci_high: float | None
    n: int

    @classmethod
    def from_row(cls, row: MetricRow) -> Accuracy:
        return cls(float(row.value), row.ci_low, row.ci_high, int(row.n))

    def contains(self, value: float) -> bool:
        """True when ``value`` lies in the interval (False when the interval is unknown)."""
        return self.ci_low is not None and self.ci_high is not None and self.ci_low <= value <= self.ci_high

    def above(self, other: Accuracy) -> bool:
        """True when this accuracy lies above ``other`` with non-overlapping intervals."""
        return self.ci_low is not None and other.ci_high is not None and self.ci_low > other.ci_high


@dataclass(frozen=True)
class ModelAccuracies:
    """One model's accuracy on our set and on the external set."""

    model: str
    ours: Accuracy
    external: Accuracy


@dataclass(frozen=True)
class ControlCheck:
    """One expected reading of a control: ``holds`` is None when the control is not in the panel."""

    control: str
    expectation: str
    holds: bool | None
    detail: str


@dataclass(frozen=True)
class AgreementRow:
    """Agreement between one of our sets and one external set across a model panel.

    Attributes:
        ours, external: the two set names.
        models: every model scored on both sets, in the order of the records.
        missing: models of the panel lacking a whole-set accuracy on either set.
        spearman, spearman_p: rank correlation of the accuracies across ``models`` and its two-sided p-value
            (None with fewer than ``MIN_MODELS`` models or when either side is constant).
        spearman_without_controls, spearman_without_controls_p: the same without the control models.
        checks: the controls' expected order.
    """

    ours: str
    external: str
    models: tuple[ModelAccuracies, ...]
    missing: tuple[str, ...]
    spearman: float | None
    spearman_p: float | None
    spearman_without_controls: float | None
    spearman_without_controls_p: float | None
    checks: tuple[ControlCheck, ...]

    @property
    def controls_hold(self) -> bool | None:
        """True when every check of a control in the panel holds; None when no control is in the panel."""
        judged = [check.holds for check in self.checks if check.holds is not None]
        return all(judged) if judged else None


def external_agreement(
    records: Sequence[RunRecord],
    pairs: Sequence[tuple[str, str]] = PAIRS,
    *,
    shape_control: str = SHAPE_CONTROL,
    colour_control: str = COLOUR_CONTROL,
    num_classes: int = 10,
) -> list[AgreementRow]:
    """One :class:`AgreementRow` per (our set, external set) pair that some record scored both sets of, from the
    panel's run records.

    Args:
        records: one run record per model, all on the same clean split (``record.model`` names the model).
        pairs: (our set, external set) names.
        shape_control, colour_control: model names of the two controls whose order is checked.
        num_classes: K; chance accuracy is 1/K.

    Raises:
        ValueError: two records of the same model, or records of different clean splits.
    """
    models = [record.model for record in records]
    if len(set(models)) != len(models):
        raise ValueError(f"the panel names a model twice: {sorted({m for m in models if models.count(m) > 1})}")
    if len({record.source_id for record in records}) > 1:
        raise ValueError("the panel's records come from different clean splits; compare one split at a time")
    controls = {shape_control, colour_control}
    rows = []
    for ours, external in pairs:
        scored, missing = [], []
        for record in records:
            mine, theirs = record.metric(ours, "accuracy"), record.metric(external, "accuracy")
            if mine is None or theirs is None:
                missing.append(record.model)
                continue
            scored.append(ModelAccuracies(record.model, Accuracy.from_row(mine), Accuracy.from_row(theirs)))
        if not scored:
            continue
        others = [m for m in scored if m.model not in controls]
        rho, p = rank_correlation(scored)
        rho_others, p_others = rank_correlation(others)
        checks = (
            _highest_check(scored, shape_control, ours, external),
            _chance_check(scored, colour_control, ours, external, 1.0 / num_classes),
        )
        rows.append(AgreementRow(ours, external, tuple(scored), tuple(missing), rho, p, rho_others, p_others, checks))
    return rows


def rank_correlation(models: Sequence[ModelAccuracies]) -> tuple[float | None, float | None]:
    """Spearman's rho (ties averaged) of our accuracies against the external ones, and its p-value."""
    if len(models) < MIN_MODELS:
        return None, None
    from scipy.stats import spearmanr

    ours = np.array([m.ours.value for m in models])
    external = np.array([m.external.value for m in models])
    if np.ptp(ours) == 0 or np.ptp(external) == 0:
        return None, None
    result = spearmanr(ours, external)
    return float(result.statistic), float(result.pvalue)


def _highest_check(models: Sequence[ModelAccuracies], control: str, ours: str, external: str) -> ControlCheck:
    expectation = f"highest on {ours} and {external}"
    found = {m.model: m for m in models}
    if control not in found:
        return ControlCheck(control, expectation, None, "not in the panel")
    mine = found[control]
    above = sorted(
        f"{m.model} on {name}"
        for m in models
        if m.model != control
        for name, theirs, own in ((ours, m.ours, mine.ours), (external, m.external, mine.external))
        if theirs.above(own)
    )
    rank_ours = 1 + sum(m.ours.value > mine.ours.value for m in models)
    rank_external = 1 + sum(m.external.value > mine.external.value for m in models)
    detail = f"rank {rank_ours} on {ours}, {rank_external} on {external} of {len(models)}"
    if above:
        detail += "; above it with non-overlapping intervals: " + ", ".join(above)
    return ControlCheck(control, expectation, not above, detail)


def _chance_check(
    models: Sequence[ModelAccuracies], control: str, ours: str, external: str, chance: float
) -> ControlCheck:
    expectation = f"at chance ({chance:.2f}) on {ours} and {external}"
    found = {m.model: m for m in models}
    if control not in found:
        return ControlCheck(control, expectation, None, "not in the panel")
    mine = found[control]
    off = [name for name, accuracy in ((ours, mine.ours), (external, mine.external)) if not accuracy.contains(chance)]
    detail = f"{ours} {_interval(mine.ours)}, {external} {_interval(mine.external)}"
    if off:
        detail += "; interval excludes chance on " + ", ".join(off)
    return ControlCheck(control, expectation, not off, detail)


def _interval(accuracy: Accuracy) -> str:
    if accuracy.ci_low is None or accuracy.ci_high is None:
        return f"{accuracy.value:.3f}"
    return f"{accuracy.value:.3f} [{accuracy.ci_low:.3f}, {accuracy.ci_high:.3f}]"
