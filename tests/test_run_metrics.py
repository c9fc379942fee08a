"""Metric rows of one run and of student-teacher-baseline comparisons, on hand-made outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from libkd_bench.metrics import formulas as metrics
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.comparison import Role, comparison_metrics, transfer_metrics
from libkd_bench.records.run_record import MetricRow
from libkd_bench.records.summary import BootstrapPool, run_metrics

N = 200
LABELS = np.arange(N) % 10


def outcome(name: str, correct: np.ndarray, levels: tuple[str, ...] = (), **fields: object) -> SetOutcome:
    """An outcome whose predictions are right exactly where ``correct`` (S, N) is True."""
    correct = np.atleast_2d(correct)
    labels = fields.pop("labels", LABELS[: correct.shape[1]])
    predicted = np.where(correct, labels, (labels + 1) % 10)
    return SetOutcome(name, predicted, labels, levels, num_classes=10, images_key=f"{name}-images", **fields)


def pattern(accuracy: float, seed: int, n: int = N) -> np.ndarray:
    correct = np.zeros(n, dtype=bool)
    correct[np.random.default_rng(seed).permutation(n)[: round(accuracy * n)]] = True
    return correct


def rows_by_key(rows: list[MetricRow]) -> dict[tuple[str, int | None, str], MetricRow]:
    keys = [row.key() for row in rows]
    assert len(keys) == len(set(keys)), "duplicate metric rows"
    return dict(zip(keys, rows, strict=True))


@pytest.fixture
def pool() -> BootstrapPool:
    return BootstrapPool(BootstrapConfig(resamples=1000, seed=0))


def student_run() -> dict[str, SetOutcome]:
    clean = pattern(0.8, 1)
    scramble = np.stack([pattern(0.6, 2), pattern(0.4, 3), pattern(0.2, 4)])
    return {
        "clean": outcome("clean", clean),
        "scramble": outcome("scramble", scramble, ("grid=2", "grid=4", "grid=8")),
        "texture": outcome("texture", pattern(0.3, 5)),
    }


def test_levels_whole_set_and_ratio_rows(pool: BootstrapPool) -> None:
    rows = rows_by_key(run_metrics(student_run(), pool))
    assert rows["clean", None, "accuracy"].value == pytest.approx(0.8)
    assert ("clean", None, "bias_ratio") not in rows
    for level, accuracy in enumerate((0.6, 0.4, 0.2), start=1):
        row = rows["scramble", level, "accuracy"]
        assert (row.value, row.severity_label, row.n) == (pytest.approx(accuracy), f"grid={2**level}", N)
        assert rows["scramble", level, "bias_ratio"].value == pytest.approx(accuracy / 0.8)
    assert rows["scramble", None, "accuracy"].value == pytest.approx(0.4)
    assert rows["scramble", None, "bias_ratio"].value == pytest.approx(0.5)
    assert rows["scramble", None, "accuracy"].severity_label == ""
    assert rows["texture", None, "bias_ratio"].value == pytest.approx(0.3 / 0.8)
    assert ("texture", 1, "accuracy") not in rows
    for row in rows.values():
        if row.metric == "top_class":  # a class index has no interval
            assert row.ci_low is row.ci_high is None
            continue
        assert row.ci_low is not None
        assert row.ci_high is not None
        assert row.ci_low <= row.value <= row.ci_high


def test_cue_conflict_shape_bias_rows_and_undefined_values_omitted(pool: BootstrapPool) -> None:
    shape = np.array([0, 0, 0, 0, 1, 1, 2])
    texture = np.array([1, 1, 1, 1, 0, 0, 2])
    predicted = np.array([[0, 0, 0, 1, 0, 2, 2]])
    clean = outcome("clean", np.ones(7, bool), labels=shape)
    conflict = SetOutcome("cue-conflict", predicted, shape, (), 3, "cc", shape_labels=shape, texture_labels=texture)
    rows = rows_by_key(run_metrics({"clean": clean, "cue-conflict": conflict}, pool))
    assert rows["cue-conflict", None, "shape_bias"].value == pytest.approx(0.6)
    assert rows["cue-conflict", None, "shape_bias_class_mean"].value == pytest.approx(0.375)
    assert rows["cue-conflict", None, "shape_bias"].n == 5
    neither = SetOutcome(
        "cue-conflict", np.full((1, 7), 2), shape, (), 3, "cc", shape_labels=shape, texture_labels=texture
    )
    rows = rows_by_key(run_metrics({"clean": clean, "cue-conflict": neither}, pool))
    assert ("cue-conflict", None, "shape_bias") not in rows
    assert ("cue-conflict", None, "accuracy") in rows


def test_adversarial_ratio_uses_clean_accuracy_on_the_attacked_subset(pool: BootstrapPool) -> None:
    run = student_run()
    subset = np.arange(0, N, 4)
    clean_on_subset = run["clean"].correct[0][subset].mean()
    attacked = np.stack([pattern(0.5, 7, len(subset)), pattern(0.1, 8, len(subset))])
    run["adv-pgd"] = outcome("adv-pgd", attacked, ("eps=2/255", "eps=8/255"), labels=LABELS[subset], indices=subset)
    rows = rows_by_key(run_metrics(run, pool))
    assert rows["adv-pgd", 2, "accuracy"].n == len(subset)
    assert rows["adv-pgd", 2, "bias_ratio"].value == pytest.approx(0.1 / clean_on_subset)
    assert rows["adv-pgd", None, "bias_ratio"].value == pytest.approx(0.3 / clean_on_subset)
    assert rows["adv-pgd", 1, "accuracy"].severity_label == "eps=2/255"


def reference_run(seed: int, scramble_accuracy: float) -> dict[str, SetOutcome]:
    run = student_run()
    run["scramble"] = outcome(
        "scramble",
        np.stack([pattern(scramble_accuracy, seed + i) for i in range(3)]),
        ("grid=2", "grid=4", "grid=8"),
    )
    run["texture"] = outcome("texture", pattern(scramble_accuracy / 2, seed + 9))
    return run


def test_teacher_comparison_rows_match_the_metric_functions(pool: BootstrapPool) -> None:
    student, teacher = student_run(), reference_run(20, 0.7)
    rows = rows_by_key(comparison_metrics(student, teacher, Role.TEACHER, pool))
    for level in (1, 2, 3):
        mine, theirs = student["scramble"].correct[level - 1], teacher["scramble"].correct[level - 1]
        assert rows["scramble", level, "error_consistency"].value == pytest.approx(metrics.cohen_kappa(mine, theirs))
        assert rows["scramble", level, "mcnemar_p"].value == pytest.approx(metrics.mcnemar_p(mine, theirs))
    pooled = metrics.cohen_kappa(student["scramble"].correct.ravel(), teacher["scramble"].correct.ravel())
    assert rows["scramble", None, "error_consistency"].value == pytest.approx(pooled)
    assert ("scramble", None, "mcnemar_p") not in rows  # levels reuse the images: no whole-set McNemar
    assert ("texture", None, "mcnemar_p") in rows
    assert rows["clean", None, "error_consistency"].value == pytest.approx(1.0)  # same clean outcome
    diff = rows["scramble", None, "bias_ratio_diff_teacher"]
    assert diff.value == pytest.approx(0.4 / 0.8 - 0.7 / 0.8)
    assert diff.ci_low <= diff.value <= diff.ci_high
    assert diff.ci_high < 0  # a 0.3 accuracy gap on 3 x 200 images is clearly significant
    baseline_rows = rows_by_key(comparison_metrics(student, teacher, Role.BASELINE, pool))
    assert {row.metric for row in baseline_rows.values()} == {"bias_ratio_diff_baseline"}


def corrected_ratio(run: dict[str, SetOutcome], name: str) -> float:
    """(acc - chance) / (clean - clean chance) by hand, chance = predicted share x label share, mean over levels."""
    outcome, clean = run[name], run["clean"]
    chance = np.mean([metrics.chance_rate(level, outcome.labels, 10) for level in outcome.predicted])
    clean_chance = metrics.chance_rate(clean.predicted[0], clean.labels, 10)
    return (outcome.correct.mean() - chance) / (clean.correct.mean() - clean_chance)


def test_bias_transfer_value_and_interval_rules(pool: BootstrapPool) -> None:
    student, teacher, baseline = reference_run(40, 0.5), reference_run(20, 0.7), reference_run(30, 0.3)
    rows = rows_by_key(transfer_metrics(student, teacher, baseline, pool))
    s, t, b = (corrected_ratio(run, "scramble") for run in (student, teacher, baseline))
    row = rows["scramble", None, "bias_transfer"]
    assert row.value == pytest.approx((s - b) / (t - b))
    assert row.ci_low <= row.value <= row.ci_high  # Fieller: bounded, the gap is far from 0
    assert rows["scramble", None, "bias_transfer_raw"].value == pytest.approx((0.5 - 0.3) / (0.7 - 0.3))
    assert all(r.severity is None for r in rows.values())
    assert not any(key[0] == "clean" for key in rows)
    gap = rows["scramble", None, "teacher_baseline_gap"]
    assert gap.value == pytest.approx(t - b)
    assert rows["scramble", None, "teacher_baseline_gap_p"].value < 1e-6
    assert rows["scramble", None, "teacher_baseline_gap_raw"].value == pytest.approx((0.7 - 0.3) / 0.8)
    # teacher and baseline differ by one image on scramble: the gap is noise, so the transfer's Fieller set is
    # not an interval and no bounded bias_transfer row is written (it would divide noise by noise)
    close = reference_run(30, 0.3)
    flipped = close["scramble"].correct.copy()
    flipped[0, np.flatnonzero(~flipped[0])[0]] = True
    close["scramble"] = outcome("scramble", flipped, ("grid=2", "grid=4", "grid=8"))
    rows = rows_by_key(transfer_metrics(student, close, baseline, pool))
    assert ("scramble", None, "bias_transfer") not in rows
    assert {"bias_transfer_unbounded", "bias_transfer_exclusive"} & {key[2] for key in rows if key[0] == "scramble"}
    assert rows["scramble", None, "teacher_baseline_gap_p"].value > 0.05
    # identical teacher and baseline: gap 0, no transfer row of any kind
    rows = rows_by_key(transfer_metrics(student, baseline, baseline, pool))
    assert not any(key[2].startswith("bias_transfer") and key[2] != "bias_transfer_raw" for key in rows)
    assert rows["scramble", None, "teacher_baseline_gap"].value == 0.0


def test_sets_measured_on_other_images_are_not_compared(pool: BootstrapPool) -> None:
    student, teacher = student_run(), reference_run(20, 0.7)
    teacher["texture"] = SetOutcome(
        "texture", teacher["texture"].predicted, LABELS, (), num_classes=10, images_key="regenerated-texture"
    )
    sets = {row.set for row in comparison_metrics(student, teacher, Role.TEACHER, pool)}
    assert sets == {"clean", "scramble"}
