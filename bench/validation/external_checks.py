"""External agreement: our derived shape sets against hand-made drawings of the same classes (CIFAR-10G).

Our silhouettes and edge drawings come from segmenting CIFAR-10 photographs, so they measure shape only as well as
the masks do. CIFAR-10G's silhouettes and line drawings were made by hand: if both measure the same cue, the
models validate already scores must read them in the same order. For each pair present in the store (ours,
external) the checks are: the model panel's rank correlation between the two accuracies is positive on its whole
95 % interval; the colour control reads no class on the line drawings (thin grey strokes, no colour); on the
silhouettes the shape control reads the class and no other model of the panel reads them significantly better.
The colour control is not held to chance on CIFAR-10G's silhouettes: they are drawn at their natural size, so
their ink area differs by class and a histogram reads it (0.13 against 0.10 and p = 0.006 on the 100 images,
measured); our own silhouettes have one ink area to the pixel for exactly that reason.

The two sets hold different images, so their bootstraps are independent (when the two sets happen to have the
same size, the second set's resamples are shifted by one so that they never share weights).

How high the agreement can be is bounded by the hand-made set's own noise (100 images): the detail reports its
split-half self-agreement, the median Spearman between the panel's accuracies on two disjoint random halves of
it (bootstrap resamples would share the one sample's accidents and overstate it). A correlation well below that
is a difference between the sets, not the reference's sampling noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from libkd_bench.reports.external_agreement import PAIRS
from libkd_bench.validation import statistics as st
from libkd_bench.validation.evidence import Evidence
from libkd_bench.validation.judging import Check, Outcome
from libkd_bench.validation.known_answers import (
    COLOUR,
    SHAPE,
    VALIDATION_MODELS,
    boot_for,
    hits_on,
    reads_no_class,
    reads_the_class,
)

SILHOUETTES = "cifar10g-silhouettes"


def external_checks(set_names: Sequence[str]) -> list[Check]:
    """Agreement checks for every pair whose two sets are in the store (the CIFAR-10G family is opt-in)."""
    present = set(set_names)
    checks: list[Check] = []
    checked_alone: set[str] = set()
    for ours, external in PAIRS:
        if external not in present or ours not in present:
            continue
        checks.append(rank_agreement(ours, external))
        if external in checked_alone:
            continue
        checked_alone.add(external)
        if external != SILHOUETTES:
            checks.append(reads_no_class(COLOUR, external, "hand-made line drawings carry no colour cue"))
        else:
            checks.append(reads_the_class(SHAPE, external, "hand-made silhouettes carry the outline"))
            checks.append(reads_best(SHAPE, external))
    return checks


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` ((B, M) each -> (B,)); ties averaged,
    NaN where a row is constant."""
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (ra * rb).sum(axis=1) / denominator, np.nan)


def self_agreement(hits: np.ndarray, splits: int = 200, seed: int = 0) -> float:
    """Split-half self-agreement of a set: the median, over ``splits`` random splits of its images into two
    disjoint halves, of the Spearman correlation between the panel's accuracies on the two halves (``hits``:
    per-image correctness, (N, M) for M models). Each half has half the images, so this is a lower bound on how
    well the whole set agrees with another draw of itself."""
    n = len(hits)
    order = np.argsort(np.random.default_rng(seed).random((splits, n)), axis=1)
    half = n // 2
    first, second = hits[order[:, :half]].mean(axis=1), hits[order[:, half : 2 * half]].mean(axis=1)
    return float(np.nanmedian(spearman_rows(first, second)))


def rank_agreement(ours: str, external: str, models: Sequence[str] = VALIDATION_MODELS) -> Check:
    """The panel's accuracies on ``ours`` and on ``external`` rank the models alike (Spearman interval > 0)."""

    def judge(evidence: Evidence) -> Outcome:
        mine = np.stack([hits_on(evidence, m, ours) for m in models], axis=1)  # (N1, M)
        theirs = np.stack([hits_on(evidence, m, external) for m in models], axis=1)  # (N2, M)
        boot_mine, boot_theirs = boot_for(evidence, len(mine)), boot_for(evidence, len(theirs))
        samples_theirs = boot_theirs.means(theirs)
        if len(mine) == len(theirs):
            samples_theirs = np.roll(samples_theirs, 1, axis=0)
        point = float(spearman_rows(mine.mean(axis=0)[None], theirs.mean(axis=0)[None])[0])
        agreement = st.estimate(point, spearman_rows(boot_mine.means(mine), samples_theirs), boot_mine)
        accuracies = ", ".join(
            f"{m} {a:.2f}/{b:.2f}" for m, a, b in zip(models, mine.mean(axis=0), theirs.mean(axis=0), strict=True)
        )
        detail = (
            f"{external} split-half self-agreement {self_agreement(theirs):.2f}; accuracy ours/external: {accuracies}"
        )
        return Outcome(agreement.above(0.0), agreement, detail)

    return Check(
        f"panel ranks {ours} like {external}",
        (ours, external),
        tuple(models),
        "Spearman across the panel's accuracies: interval > 0",
        "our derived set and the hand-made one measure the same cue",
        judge,
    )


def reads_best(model: str, set_name: str, panel: Sequence[str] = VALIDATION_MODELS) -> Check:
    """No model of the panel reads ``set_name`` significantly better than ``model`` (paired, image by image)."""
    others = tuple(m for m in panel if m != model)

    def judge(evidence: Evidence) -> Outcome:
        mine = hits_on(evidence, model, set_name)
        boot = boot_for(evidence, len(mine))
        gaps = {m: st.mean_difference(mine, hits_on(evidence, m, set_name), boot) for m in others}
        closest = min(gaps, key=lambda m: gaps[m].value)
        beaten = [m for m, gap in gaps.items() if gap.high is not None and gap.high < 0.0]
        detail = f"closest: {closest}" + (f"; significantly better: {', '.join(beaten)}" if beaten else "")
        return Outcome(not beaten, gaps[closest], detail)

    return Check(
        f"{model} reads {set_name} at least as well as the panel",
        (set_name,),
        (model, *others),
        "accuracy minus every other model's, paired: no interval entirely < 0",
        "a model that sees only the outline reads hand-made silhouettes best",
        judge,
    )
