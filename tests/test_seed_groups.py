"""Seeds of one model pooled into one row: mean over seeds, hierarchical interval, per-seed spread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from libkd_bench.core.errors import BenchError
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.run_record import RunRecord
from libkd_bench.records.seed_groups import (
    hierarchical_samples,
    seed_group_rows,
    seed_group_transfer_rows,
    seed_groups,
)
from libkd_bench.records.summary import BootstrapPool, run_metrics
from libkd_bench.records.transfer import transfer_metrics
from libkd_bench.scoring.seed_pooling import pooled_seed_records

K, N = 10, 300
LABELS = np.arange(N) % K


def run_with(accuracy: float, seed: int) -> dict[str, SetOutcome]:
    rng = np.random.default_rng(seed)
    runs = {}
    for name, acc in (("clean", 0.9), ("shape", accuracy)):
        correct = rng.random(N) < acc
        predicted = np.where(correct, LABELS, (LABELS + 1) % K)[None]
        runs[name] = SetOutcome(name, predicted, LABELS, (), K, name)
    return runs


def rows_of(rows) -> dict[tuple[str, str], object]:
    return {(row.set, row.metric): row for row in rows}


@pytest.fixture
def pool() -> BootstrapPool:
    return BootstrapPool(BootstrapConfig())


def test_identical_seeds_pool_to_the_single_run(pool: BootstrapPool) -> None:
    run = run_with(0.5, 1)
    pooled = rows_of(seed_group_rows([run, run, run], pool, np.random.default_rng(0)))
    single = rows_of(run_metrics(run, pool))
    for metric in ("accuracy", "bias_ratio", "bias_ratio_cc"):
        row, reference = pooled["shape", metric], single["shape", metric]
        assert row.value == pytest.approx(reference.value)
        assert (row.ci_low, row.ci_high) == pytest.approx((reference.ci_low, reference.ci_high))
        assert pooled["shape", metric + "_seed_sd"].value == pytest.approx(0.0)


def test_seed_spread_widens_the_interval_and_is_reported(pool: BootstrapPool) -> None:
    seeds = [run_with(acc, i) for i, acc in enumerate((0.3, 0.5, 0.7))]
    pooled = rows_of(seed_group_rows(seeds, pool, np.random.default_rng(0)))
    accuracies = [float(run["shape"].correct.mean()) for run in seeds]
    row = pooled["shape", "accuracy"]
    assert row.value == pytest.approx(np.mean(accuracies))
    assert pooled["shape", "accuracy_seed_sd"].value == pytest.approx(np.std(accuracies, ddof=1))
    widths = [r.ci_high - r.ci_low for r in (rows_of(run_metrics(s, pool))["shape", "accuracy"] for s in seeds)]
    assert row.ci_high - row.ci_low > 2 * max(widths)  # seeds 0.2 apart dominate the test-image noise


def test_hierarchical_samples_draw_whole_seeds() -> None:
    per_seed = np.array([[0.0] * 2000, [1.0] * 2000])
    samples = hierarchical_samples(per_seed, np.random.default_rng(0))
    assert set(np.unique(samples)) <= {0.0, 0.5, 1.0}
    assert np.mean(samples == 0.5) == pytest.approx(0.5, abs=0.05)  # two seeds drawn: half the time one of each


def record(model: str, seed_of: str | None) -> RunRecord:
    kd = {"seed_of": seed_of} if seed_of else {}
    return RunRecord(model=model, source={"id": "src"}, checkpoint={}, spec={}, metrics=(), kd=kd)


def test_only_groups_of_two_or_more_seeds_are_pooled() -> None:
    groups = seed_groups([record("a1", "a"), record("a2", "a"), record("b1", "b"), record("c", None)])
    assert list(groups) == [("src", "a")]
    assert [r.model for r in groups["src", "a"]] == ["a1", "a2"]


def test_a_group_named_like_a_scored_run_is_refused(tmp_path: Path) -> None:
    records = [record("a1", "a"), record("a2", "a"), record("a", None)]
    with pytest.raises(BenchError, match="--seed-of 'a' is also the name of a scored run"):
        pooled_seed_records(records, tmp_path)


def transfer_runs(seed_accuracies: tuple[float, ...]) -> tuple[list, dict, dict]:
    """Seeds of a student, a teacher and a baseline whose shape accuracies are far apart (a clear gap)."""
    seeds = [run_with(acc, 10 + i) for i, acc in enumerate(seed_accuracies)]
    return seeds, run_with(0.8, 1), run_with(0.2, 2)


def test_identical_seeds_pool_to_the_single_runs_transfer(pool: BootstrapPool) -> None:
    seeds, teacher, baseline = transfer_runs((0.5,))
    single = rows_of(transfer_metrics(seeds[0], teacher, baseline, pool))
    pooled = rows_of(seed_group_transfer_rows(seeds * 3, teacher, baseline, pool, np.random.default_rng(0)))
    for metric in ("bias_transfer", "teacher_baseline_gap", "teacher_baseline_gap_p"):
        row, reference = pooled["shape", metric], single["shape", metric]
        assert row.value == pytest.approx(reference.value)
        assert (row.ci_low, row.ci_high) == pytest.approx((reference.ci_low, reference.ci_high))
    assert pooled["shape", "bias_transfer_seed_sd"].value == pytest.approx(0.0)


def test_pooled_transfer_is_the_mean_over_seeds_with_a_wider_set(pool: BootstrapPool) -> None:
    seeds, teacher, baseline = transfer_runs((0.35, 0.5, 0.65))
    pooled = rows_of(seed_group_transfer_rows(seeds, teacher, baseline, pool, np.random.default_rng(0)))
    per_seed = [rows_of(transfer_metrics(seed, teacher, baseline, pool))["shape", "bias_transfer"] for seed in seeds]
    row = pooled["shape", "bias_transfer"]
    assert row.value == pytest.approx(np.mean([r.value for r in per_seed]))
    assert pooled["shape", "bias_transfer_seed_sd"].value == pytest.approx(np.std([r.value for r in per_seed], ddof=1))
    assert row.ci_high - row.ci_low > 1.5 * max(r.ci_high - r.ci_low for r in per_seed)


def test_pooled_transfer_beyond_the_recipe_control(pool: BootstrapPool) -> None:
    seeds, teacher, baseline = transfer_runs((0.6,))
    control = run_with(0.4, 3)
    pooled = rows_of(seed_group_transfer_rows(seeds * 2, teacher, baseline, pool, np.random.default_rng(0), control))
    single = rows_of(transfer_metrics(seeds[0], teacher, baseline, pool, control))
    for metric in ("recipe_control_transfer", "transfer_beyond_recipe"):
        assert pooled["shape", metric].value == pytest.approx(single["shape", metric].value)
