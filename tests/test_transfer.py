"""Bias transfer with known answers: chance, Fieller sets, Holm, identification, fidelity and the recipe control."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libkd_bench.core.errors import BenchError
from libkd_bench.metrics import formulas
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.multiplicity import holm_adjust
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.metrics.ratio_inference import (
    IntervalKind,
    delta_interval,
    fieller_interval,
    normal_p_value,
)
from libkd_bench.records.comparison import Role, comparison_metrics, transfer_metrics
from libkd_bench.records.run_record import MetricRow, RunRecord
from libkd_bench.records.summary import BootstrapPool, run_metrics
from libkd_bench.reports.identification import MIN_TRANSFER_GAP, identify_transfers
from libkd_bench.reports.leaderboard import long_frame
from libkd_bench.reports.markdown import leaderboard_markdown
from libkd_bench.scoring.reference_runs import KdContext, ReferenceRun

K = 10
N = 400
LABELS = np.arange(N) % K
SETS = ("texture", "shape", "scramble")


def logits_run(strengths: dict[str, float], noise: np.ndarray) -> dict[str, np.ndarray]:
    """(1, N, K) logits per set: ``strength`` times the one-hot label plus a fixed noise pattern per set."""
    one_hot = np.eye(K)[LABELS]
    return {name: (strength * one_hot + noise[i])[None] for i, (name, strength) in enumerate(strengths.items())}


def outcomes_of(logits: dict[str, np.ndarray]) -> dict[str, SetOutcome]:
    return {name: SetOutcome.from_logits(name, x, LABELS, levels=(), images_key=name) for name, x in logits.items()}


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(1 + len(SETS), N, K))


@pytest.fixture(scope="module")
def pool() -> BootstrapPool:
    return BootstrapPool(BootstrapConfig())


def teacher_and_baseline(noise: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    # same clean strength; the teacher keeps more on every set, with a clear gap
    teacher = logits_run({"clean": 3.0, "texture": 2.5, "shape": 2.0, "scramble": 1.2}, noise)
    baseline = logits_run({"clean": 3.0, "texture": 1.0, "shape": 0.6, "scramble": 2.4}, noise)
    return teacher, baseline


def nudged(logits: np.ndarray) -> np.ndarray:
    """The same logits with a little noise: a few predictions change, so the gap is small but not 0."""
    return logits + 0.3 * np.random.default_rng(11).normal(size=logits.shape)


def record_of(model: str, rows: list[MetricRow], kd: dict[str, str] | None = None) -> RunRecord:
    return RunRecord(model=model, source={"id": "src"}, checkpoint={}, spec={}, metrics=tuple(rows), kd=kd or {})


def student_record(student, teacher, baseline, pool, name="student", control=None) -> RunRecord:
    rows = [*transfer_metrics(student, teacher, baseline, pool, control)]
    rows += comparison_metrics(student, teacher, Role.TEACHER, pool)
    return record_of(name, rows, {"teacher": "teacher@src", "baseline": "baseline@src"})


def by_key(rows) -> dict[tuple[str, int | None, str], MetricRow]:
    return {row.key(): row for row in rows}


# chance -------------------------------------------------------------------------------------------------------


def test_chance_is_predicted_share_times_label_share_by_hand() -> None:
    predicted = np.array([0, 0, 0, 1])  # shares 0.75, 0.25
    labels = np.array([0, 1, 1, 1])  # shares 0.25, 0.75
    assert formulas.chance_rate(predicted, labels, 2) == pytest.approx(0.75 * 0.25 + 0.25 * 0.75)


@pytest.mark.parametrize("collapsed_on", [0, 1, 4])
def test_a_model_collapsed_on_any_class_reads_zero_on_an_unbalanced_set(pool: BootstrapPool, collapsed_on: int) -> None:
    labels = np.repeat(np.arange(K), [30, 50, 40, 40, 36, 44, 40, 40, 40, 40])  # gated: 7.5-12.5 % per class
    n = labels.size
    clean = SetOutcome("clean", labels[None].copy(), labels, (), K, "clean")
    collapsed = SetOutcome("shape", np.full((1, n), collapsed_on), labels, (), K, "shape")
    rows = by_key(run_metrics({"clean": clean, "shape": collapsed}, pool))
    assert rows["shape", None, "bias_ratio_cc"].value == pytest.approx(0.0, abs=1e-12)
    # a flat 1/K chance would have read this as above or below chance depending on the class
    flat = formulas.chance_corrected_ratio_from_accuracies(np.mean(labels == collapsed_on), 1.0, K)
    assert abs(float(flat)) > 0.01


# Fieller, delta, Holm --------------------------------------------------------------------------------------------


def simulated_covariance(rng: np.random.Generator, num: float, den: float, sd: float) -> tuple:
    samples = rng.multivariate_normal([num, den], [[sd**2, 0.5 * sd**2], [0.5 * sd**2, sd**2]], size=20000)
    cov = np.cov(samples.T)
    return float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])


def test_fieller_equals_the_delta_method_far_from_zero() -> None:
    covariance = simulated_covariance(np.random.default_rng(0), 0.3, 0.6, 0.004)  # den 150 se from 0
    fieller = fieller_interval(0.3, 0.6, covariance)
    assert fieller.kind is IntervalKind.BOUNDED
    low, high = delta_interval(0.3, 0.6, covariance)
    assert fieller.low == pytest.approx(low, abs=2e-4)
    assert fieller.high == pytest.approx(high, abs=2e-4)


def test_fieller_is_unbounded_when_the_denominator_is_near_zero() -> None:
    rng = np.random.default_rng(1)
    covariance = simulated_covariance(rng, 0.02, 0.01, 0.05)  # den 0.2 se from 0, num too: the whole line
    assert fieller_interval(0.02, 0.01, covariance).kind is IntervalKind.UNBOUNDED
    covariance = simulated_covariance(rng, 0.5, 0.05, 0.05)  # num clearly non-zero, den not: a complement
    estimate = fieller_interval(0.5, 0.05, covariance)
    assert estimate.kind is IntervalKind.EXCLUSIVE
    assert estimate.low < estimate.high
    assert not estimate.low < estimate.value < estimate.high  # the point estimate lies in the set, not the gap


def test_fieller_covers_the_true_ratio_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(2)
    true_ratio, den, sd, hits, trials = 0.4, 0.3, 0.06, 0, 400
    cov = np.array([[sd**2, 0.3 * sd**2], [0.3 * sd**2, sd**2]])
    for _ in range(trials):
        num_hat, den_hat = rng.multivariate_normal([true_ratio * den, den], cov)
        est = fieller_interval(num_hat, den_hat, (cov[0, 0], cov[0, 1], cov[1, 1]))
        if est.kind is IntervalKind.BOUNDED:
            hits += est.low <= true_ratio <= est.high
        elif est.kind is IntervalKind.EXCLUSIVE:
            hits += not est.low < true_ratio < est.high
        else:
            hits += 1
    assert 0.92 <= hits / trials <= 0.98


def test_holm_matches_a_hand_computed_example() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([]) == []


def test_holm_rejects_values_that_are_not_p_values() -> None:
    with pytest.raises(ValueError, match="p-values"):
        holm_adjust([0.01, 1.5])


def test_normal_p_value_by_hand() -> None:
    samples = np.array([-1.0, 1.0] * 50)  # sd = 1.005
    assert normal_p_value(1.96 * samples.std(ddof=1), samples) == pytest.approx(0.05, abs=1e-4)
    assert normal_p_value(0.0, np.zeros(10)) == 1.0


# transfer known answers -------------------------------------------------------------------------------------------


def test_student_equal_to_teacher_transfers_one_and_agrees_fully(noise: np.ndarray, pool: BootstrapPool) -> None:
    teacher, baseline = (outcomes_of(x) for x in teacher_and_baseline(noise))
    record = student_record(teacher, teacher, baseline, pool)
    found = identify_transfers([record])
    identified = [name for name in SETS if found["student@src", name].identified]
    assert identified == list(SETS)
    rows = by_key(record.metrics)
    for name in identified:
        transfer = rows[name, None, "bias_transfer"]
        assert transfer.value == pytest.approx(1.0)
        assert transfer.ci_low == pytest.approx(1.0)
        assert transfer.ci_high == pytest.approx(1.0)
    for name in ("clean", *SETS):
        assert rows[name, None, "top1_agreement"].value == 1.0
        assert rows[name, None, "kl_teacher_student"].value == pytest.approx(0.0, abs=1e-9)
        assert rows[name, None, "top1_agreement:cat"].value == 1.0


def test_student_equal_to_baseline_transfers_zero(noise: np.ndarray, pool: BootstrapPool) -> None:
    teacher, baseline = (outcomes_of(x) for x in teacher_and_baseline(noise))
    rows = by_key(transfer_metrics(baseline, teacher, baseline, pool))
    for name in SETS:
        assert rows[name, None, "bias_transfer"].value == pytest.approx(0.0, abs=1e-12)
        assert rows[name, None, "bias_transfer"].ci_low <= 0.0 <= rows[name, None, "bias_transfer"].ci_high


def test_a_logit_average_of_teacher_and_baseline_transfers_between_zero_and_one(
    noise: np.ndarray, pool: BootstrapPool
) -> None:
    teacher_logits, baseline_logits = teacher_and_baseline(noise)
    average = {name: (teacher_logits[name] + baseline_logits[name]) / 2 for name in teacher_logits}
    teacher, baseline = outcomes_of(teacher_logits), outcomes_of(baseline_logits)
    record = student_record(outcomes_of(average), teacher, baseline, pool)
    found = identify_transfers([record])
    rows = by_key(record.metrics)
    for name in SETS:
        assert found["student@src", name].identified
        assert 0.0 <= rows[name, None, "bias_transfer"].value <= 1.0


def test_a_gap_below_the_minimum_effect_is_not_identified(noise: np.ndarray, pool: BootstrapPool) -> None:
    teacher_logits, _ = teacher_and_baseline(noise)
    teacher = outcomes_of(teacher_logits)
    near = outcomes_of({**teacher_logits, "texture": nudged(teacher_logits["texture"])})  # a tiny gap
    record = student_record(teacher, teacher, near, pool)
    cell = identify_transfers([record])["student@src", "texture"]
    assert not cell.identified
    assert abs(cell.gap) < MIN_TRANSFER_GAP or cell.p_holm > 0.05
    markdown = leaderboard_markdown([record])
    assert "not identified" in markdown


def test_holm_tests_a_shared_gap_once(noise: np.ndarray, pool: BootstrapPool) -> None:
    teacher, baseline = (outcomes_of(x) for x in teacher_and_baseline(noise))
    first = student_record(teacher, teacher, baseline, pool, "first")
    second = student_record(baseline, teacher, baseline, pool, "second")
    found = identify_transfers([first, second])
    alone = identify_transfers([first])
    for name in SETS:  # the same (teacher, baseline, set) hypotheses: adjusted as if there were one student
        assert found["second@src", name].p_holm == pytest.approx(alone["first@src", name].p_holm)


def test_recipe_control_rows_subtract_the_controls_transfer(noise: np.ndarray, pool: BootstrapPool) -> None:
    teacher_logits, baseline_logits = teacher_and_baseline(noise)
    teacher, baseline = outcomes_of(teacher_logits), outcomes_of(baseline_logits)
    student = outcomes_of({k: 0.8 * teacher_logits[k] + 0.2 * baseline_logits[k] for k in teacher_logits})
    control = outcomes_of({k: 0.5 * teacher_logits[k] + 0.5 * baseline_logits[k] for k in teacher_logits})
    rows = by_key(transfer_metrics(student, teacher, baseline, pool, control))
    for name in SETS:
        own, of_control = rows[name, None, "bias_transfer"].value, rows[name, None, "recipe_control_transfer"].value
        beyond = rows[name, None, "transfer_beyond_recipe"]
        assert beyond.value == pytest.approx(own - of_control)
        assert beyond.ci_low <= beyond.value <= beyond.ci_high
    # the control as student: nothing beyond the recipe
    rows = by_key(transfer_metrics(control, teacher, baseline, pool, control))
    assert rows["texture", None, "transfer_beyond_recipe"].value == pytest.approx(0.0, abs=1e-12)


def test_recipe_control_needs_teacher_and_baseline(noise: np.ndarray) -> None:
    run = ReferenceRun(record_of("control", []), results=None)  # type: ignore[arg-type]
    with pytest.raises(BenchError, match="--recipe-control needs --teacher and --baseline"):
        KdContext(recipe_control=run)


def test_an_unbounded_transfer_is_named_so_and_shown_in_words(noise: np.ndarray, pool: BootstrapPool) -> None:
    teacher_logits, baseline_logits = teacher_and_baseline(noise)
    teacher = outcomes_of(teacher_logits)
    same = outcomes_of({**teacher_logits, "texture": nudged(teacher_logits["texture"])})  # gap ~ 0 on texture
    rows = by_key(transfer_metrics(outcomes_of(baseline_logits), teacher, same, pool))
    names = {key[2] for key in rows if key[0] == "texture"}
    assert "bias_transfer" not in names
    assert names & {"bias_transfer_unbounded", "bias_transfer_exclusive"}
    frame = long_frame([record_of("s", list(rows.values()), {"teacher": "t@src", "baseline": "b@src"})])
    identified = frame[(frame.set == "texture") & (frame.metric == "transfer_identified")]
    assert identified.value.tolist() == [0.0]
    assert "bias_transfer_raw" in set(frame.metric)  # the reference study's figure stays in the CSV


# fidelity --------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_top1_agreement_lies_within_its_arithmetic_bounds(seed: int, keep_t: float, keep_s: float) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    labels = rng.integers(0, K, n)
    teacher = np.where(rng.random(n) < keep_t, labels, rng.integers(0, K, n))
    student = np.where(rng.random(n) < keep_s, labels, np.where(rng.random(n) < 0.5, teacher, rng.integers(0, K, n)))
    low, high = formulas.agreement_bounds(float(np.mean(teacher == labels)), float(np.mean(student == labels)))
    agreement = float(np.mean(teacher == student))
    assert low - 1e-12 <= agreement <= high + 1e-12


def test_agreement_bounds_reject_a_broken_agreement() -> None:
    # teacher 90 % right, student 20 % right: they cannot agree on 95 % of the images
    low, high = formulas.agreement_bounds(0.9, 0.2)
    assert (low, high) == pytest.approx((0.1, 0.3))
    assert not low <= 0.95 <= high


def test_kl_by_hand() -> None:
    teacher = np.log(np.array([[0.5, 0.5]]))
    student = np.log(np.array([[0.25, 0.75]]))
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert formulas.kl_divergence_from_log_probs(teacher, student) == pytest.approx([expected])
    assert formulas.log_softmax(np.array([[1000.0, 0.0]]))[0, 0] == pytest.approx(0.0)  # no overflow
