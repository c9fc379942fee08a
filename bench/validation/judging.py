"""Checks and judgements: the vocabulary every check provider speaks.

A :class:`Check` names the sets and models it needs, the fewest images on which it can decide, and a ``judge``
that turns :class:`~libkd_bench.validation.evidence.Evidence` into a :class:`Judgement` (an estimate with its 95 %
interval, a verdict, a short detail). Checks come from providers (``provider(set_names) -> checks``), so a new
family of evidence (another data set, another probe) adds a provider and nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from libkd_bench.validation.evidence import Evidence
from libkd_bench.validation.statistics import Estimate, images_needed

# The fewest images on which a share's 95 % interval can be narrower than +-0.10: below it no check decides.
MIN_IMAGES = images_needed(0.10)


class Verdict(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class Outcome:
    """What a judge found: pass or not, the estimate it decided on, and a detail for the table (a p-value, a
    reference value)."""

    holds: bool
    estimate: Estimate | None
    detail: str = ""


@dataclass(frozen=True)
class Check:
    """One expectation about a valid store.

    Attributes:
        name: unique, short, for tables and mutant reports.
        sets: sets it reads (the first is the one it is about).
        models: models whose predictions it needs, on every set of ``sets``.
        expected: the expectation in words, with the bound.
        why: what it proves, one line.
        judge: evidence -> outcome.
        min_images: fewest images in each of ``sets`` for the check to decide.
    """

    name: str
    sets: tuple[str, ...]
    models: tuple[str, ...]
    expected: str
    why: str
    judge: Callable[[Evidence], Outcome]
    min_images: int = MIN_IMAGES


@dataclass(frozen=True)
class Judgement:
    check: Check
    verdict: Verdict
    estimate: Estimate | None
    detail: str

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


CheckProvider = Callable[[Sequence[str]], list[Check]]


def judge(check: Check, evidence: Evidence) -> Judgement:
    outcome = check.judge(evidence)
    verdict = Verdict.PASS if outcome.holds else Verdict.FAIL
    return Judgement(check, verdict, outcome.estimate, outcome.detail)


def needs(checks: Sequence[Check]) -> dict[str, set[str]]:
    """Sets each model must be run on for ``checks``."""
    wanted: dict[str, set[str]] = {}
    for check in checks:
        for model in check.models:
            wanted.setdefault(model, set()).update(check.sets)
    return wanted
