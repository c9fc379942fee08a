"""Known answers: what control models whose bias is fixed by construction must read on a valid set store.

A derived set is valid only when models whose bias is known read as expected on it (DESIGN.md, "Validity").
Each :class:`KnownAnswer` names a model, a set, a metric and the expected value or direction, and is judged
from run records alone (so ``validate`` and the test suite check exactly the same thing). The controls are
described in :mod:`libkd_bench.models.architectures.controls`; the CIFAR ResNets of the zoo are the reference point for
the relative checks.

Pure functions of records: nothing here scores, prints or exits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from libkd_bench.records.run_record import MetricRow, RunRecord

NUM_CLASSES = 10
CHANCE = 1.0 / NUM_CLASSES
CHANCE_TOLERANCE = 0.05
DEFAULT_SHARE = 0.5  # a set where one class takes more predictions than this measures that default

COLOUR, BAGNET, SHAPE = "control-colour", "control-bagnet", "control-shape"
RESNET20, RESNET56 = "akamaster-resnet20", "akamaster-resnet56"
VALIDATION_MODELS = (COLOUR, BAGNET, SHAPE, RESNET20, RESNET56)


class Verdict(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"  # a record or a row the check needs is absent (the set was not generated, say)


@dataclass(frozen=True)
class Judgement:
    """The outcome of one known-answer check."""

    check: KnownAnswer
    verdict: Verdict
    measured: MetricRow | None
    reference: MetricRow | None = None


Records = Mapping[str, RunRecord]


@dataclass(frozen=True)
class KnownAnswer:
    """One expectation.

    Attributes:
        model: record name of the model checked.
        set: set name; severity: 1-based level or None for the whole set.
        metric: metric row name.
        expected: the expectation in words, for the table.
        why: what the check proves, one line.
        holds: ``holds(row, reference)`` -> bool; ``reference`` is the row of ``versus`` (None when unused).
        versus: another model whose same row the value is compared with (relative checks).
    """

    model: str
    set: str
    severity: int | None
    metric: str
    expected: str
    why: str
    holds: Callable[[MetricRow, MetricRow | None], bool]
    versus: str | None = None

    def judge(self, records: Records) -> Judgement:
        row = _row(records, self.model, self.set, self.severity, self.metric)
        reference = _row(records, self.versus, self.set, self.severity, self.metric) if self.versus else None
        if row is None or (self.versus and reference is None):
            return Judgement(self, Verdict.MISSING, row, reference)
        verdict = Verdict.PASS if self.holds(row, reference) else Verdict.FAIL
        return Judgement(self, verdict, row, reference)


def _row(records: Records, model: str | None, set_name: str, severity: int | None, metric: str) -> MetricRow | None:
    record = records.get(model) if model else None
    return record.metric(set_name, metric, severity) if record else None


def _at_most(limit: float) -> Callable[[MetricRow, MetricRow | None], bool]:
    return lambda row, _: row.value <= limit


def _at_least(limit: float) -> Callable[[MetricRow, MetricRow | None], bool]:
    return lambda row, _: row.value >= limit


def _near_chance(row: MetricRow, _: MetricRow | None) -> bool:
    return abs(row.value - CHANCE) <= CHANCE_TOLERANCE


def _exactly_one(row: MetricRow, _: MetricRow | None) -> bool:
    return row.value == 1.0


def _above_chance_by(margin: float) -> Callable[[MetricRow, MetricRow | None], bool]:
    return lambda row, _: row.value >= CHANCE + margin


def _separated(below: bool) -> Callable[[MetricRow, MetricRow | None], bool]:
    """The row's interval lies entirely below (or above) the reference's."""

    def holds(row: MetricRow, reference: MetricRow | None) -> bool:
        if reference is None or None in (row.ci_low, row.ci_high, reference.ci_low, reference.ci_high):
            return False
        return row.ci_high < reference.ci_low if below else row.ci_low > reference.ci_high  # type: ignore[operator]

    return holds


def known_answers() -> list[KnownAnswer]:
    """Every check ``validate`` runs, in the order of its table."""
    checks = [
        KnownAnswer(
            COLOUR,
            "cue-conflict",
            None,
            "shape_bias_cc",
            "<= 0.10",
            "a model without spatial information reads ~0 on the corrected shape bias",
            _at_most(0.10),
        ),
        KnownAnswer(
            COLOUR,
            "shape",
            None,
            "accuracy",
            "chance +- 0.05",
            "silhouettes carry no colour cue (area and position are normalised)",
            _near_chance,
        ),
        KnownAnswer(
            COLOUR,
            "texture",
            None,
            "accuracy",
            ">= chance + 0.05",
            "textures keep the object's colours",
            _above_chance_by(0.05),
        ),
    ]
    checks += [
        KnownAnswer(
            COLOUR,
            "scramble",
            severity,
            "bias_ratio",
            "exactly 1",
            "scrambling permutes pixels, which a histogram cannot see",
            _exactly_one,
        )
        for severity in (1, 2, 3, None)
    ]
    checks += [
        KnownAnswer(
            BAGNET,
            "cue-conflict",
            None,
            "shape_bias_cc",
            "below ResNet-20, intervals apart",
            "a bag of 5-px features is texture-biased",
            _separated(below=True),
            versus=RESNET20,
        ),
        KnownAnswer(
            BAGNET,
            "texture",
            None,
            "accuracy",
            ">= chance + 0.05",
            "textures carry the local features a bag-of-features model reads",
            _above_chance_by(0.05),
        ),
    ]
    checks += [
        KnownAnswer(
            BAGNET,
            "scramble",
            severity,
            "bias_ratio",
            "above ResNet-20, intervals apart",
            "local features survive tiles larger than their window",
            _separated(below=False),
            versus=RESNET20,
        )
        for severity in (1, 2)
    ]
    checks += [
        KnownAnswer(
            SHAPE,
            "cue-conflict",
            None,
            "shape_bias_cc",
            ">= 0.8",
            "a model that sees only a one-bit outline follows the shape label",
            _at_least(0.8),
        ),
        KnownAnswer(
            SHAPE,
            "texture",
            None,
            "accuracy",
            "chance +- 0.05",
            "textures leak no outline (shape leakage)",
            _near_chance,
        ),
        KnownAnswer(
            SHAPE,
            "shape",
            None,
            "accuracy",
            ">= chance + 0.05",
            "silhouettes carry the outline",
            _above_chance_by(0.05),
        ),
    ]
    checks += [
        KnownAnswer(
            model,
            set_name,
            None,
            "top_class_share",
            f"<= {DEFAULT_SHARE}",
            "no single default class answers for most images",
            _at_most(DEFAULT_SHARE),
        )
        for model in (RESNET20, RESNET56)
        for set_name in ("shape", "texture", "cue-conflict")
    ]
    return checks


def judge_all(records: Records, checks: Sequence[KnownAnswer] | None = None) -> list[Judgement]:
    """Every check judged on ``records`` (by model name)."""
    return [check.judge(records) for check in (checks if checks is not None else known_answers())]


def passed(judgements: Sequence[Judgement]) -> bool:
    """True when every check passed (a missing row is not a pass)."""
    return all(j.verdict is Verdict.PASS for j in judgements)
