"""Several training seeds of one model pooled into one leaderboard row, with intervals covering seeds and images.

``score --seed-of NAME`` marks a run as one seed of model NAME (``record.kd["seed_of"]``). A claim about a
training method is about the method, not one lucky run: the pooled row's value is the mean over seeds, and its
interval comes from a two-level (hierarchical) bootstrap: each resample draws the seeds with replacement and,
jointly, the test images (the paired image resampling every run shares), then averages the drawn seeds' values.
It therefore widens with the spread between seeds as well as with the test-set noise, which an image-only
interval of one seed ignores.

Pooled rows (whole set, per stored set): ``accuracy``, ``bias_ratio`` and ``bias_ratio_cc`` with the
hierarchical interval, and ``<metric>_seed_sd``: the standard deviation of the per-seed values (the per-seed
values themselves stay in the long CSV under each seed's own run). Only sets every seed measured on the same
images are pooled.

Seeds of a student that share one teacher and one baseline run (and recipe control, if any) also get pooled
bias-transfer rows (:func:`seed_group_transfer_rows`): the mean over seeds of (s_i - b) / (t - b) is
(mean s - b) / (t - b), one ratio, so its Fieller set takes the hierarchical resamples of the seeds' mean
chance-corrected ratio for the numerator and the same image resamples of teacher and baseline for both terms;
``bias_transfer_seed_sd`` is the spread of the per-seed transfers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from libkd_bench.metrics.bootstrap import percentile_interval
from libkd_bench.metrics.outcomes import CLEAN, SetOutcome
from libkd_bench.records.comparison import comparable_sets
from libkd_bench.records.run_record import MetricRow, RunRecord
from libkd_bench.records.summary import WHOLE_SET, BootstrapPool, accuracy_summary
from libkd_bench.records.transfer import TRANSFER, corrected_transfer_rows

SEED_OF = "seed_of"
SPREAD_SUFFIX = "_seed_sd"
POOLED_METRICS = ("accuracy", "bias_ratio", "bias_ratio_cc")


def seed_groups(records: Sequence[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """(source id, model name) -> the runs marked as its seeds, by run id; only groups of two or more."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        name = record.kd.get(SEED_OF)
        if name:
            groups.setdefault((record.source_id, str(name)), []).append(record)
    return {key: sorted(runs, key=lambda r: r.run_id) for key, runs in groups.items() if len(runs) >= 2}


def hierarchical_samples(
    per_seed: np.ndarray, rng: np.random.Generator | None = None, drawn: np.ndarray | None = None
) -> np.ndarray:
    """(B,) resampled means over seeds: row b draws the seeds with replacement and takes their image-resample b.

    Args:
        per_seed: (m, B) each seed's statistic on the B shared image resamples.
        rng: draws the seeds (when ``drawn`` is not given).
        drawn: (B, m) seed indices already drawn, to resample several statistics with the same seeds.
    """
    per_seed = np.asarray(per_seed, dtype=np.float64)
    seeds, resamples = per_seed.shape
    if drawn is None:
        if rng is None:
            raise ValueError("hierarchical_samples needs rng or drawn")
        drawn = rng.integers(0, seeds, size=(resamples, seeds))
    return per_seed[drawn, np.arange(resamples)[:, None]].mean(axis=1)


def seed_group_rows(
    outcomes_by_seed: Sequence[Mapping[str, SetOutcome]], pool: BootstrapPool, rng: np.random.Generator
) -> list[MetricRow]:
    """The pooled rows of the module docstring from each seed's outcomes (same clean images)."""
    first, others = outcomes_by_seed[0], outcomes_by_seed[1:]
    rows = []
    for name in comparable_sets(first, *others):
        reference = first[name]
        summaries = [accuracy_summary(run[name], run[CLEAN], pool) for run in outcomes_by_seed]
        for metric in POOLED_METRICS:
            if name == CLEAN and metric != "accuracy":
                continue
            estimates = [_statistic(summary, metric) for summary in summaries]
            points = np.array([point for point, _ in estimates])
            if not np.isfinite(points).all():
                continue
            samples = hierarchical_samples(np.stack([s for _, s in estimates]), rng)
            low, high = percentile_interval(samples, pool.config.confidence)
            rows.append(MetricRow(name, None, "", metric, float(points.mean()), low, high, reference.n))
            spread = float(points.std(ddof=1))
            rows.append(MetricRow(name, None, "", metric + SPREAD_SUFFIX, spread, None, None, len(points)))
    return rows


def seed_group_transfer_rows(
    outcomes_by_seed: Sequence[Mapping[str, SetOutcome]],
    teacher: Mapping[str, SetOutcome],
    baseline: Mapping[str, SetOutcome],
    pool: BootstrapPool,
    rng: np.random.Generator,
    recipe_control: Mapping[str, SetOutcome] | None = None,
) -> list[MetricRow]:
    """Pooled transfer rows of a seed group of one student (see the module docstring), per set every run measured
    on the same images: the teacher-baseline gap and its p-value (as a single run has them, for the leaderboard's
    identification), ``bias_transfer`` with its Fieller set, with a recipe control ``recipe_control_transfer``
    and ``transfer_beyond_recipe``, and ``bias_transfer_seed_sd``."""
    references = {"t": teacher, "b": baseline, **({"c": recipe_control} if recipe_control is not None else {})}
    rows: list[MetricRow] = []
    for name in comparable_sets(*outcomes_by_seed, *references.values()):
        if name == CLEAN:
            continue
        corrected = {key: _corrected(run, name, pool) for key, run in references.items()}
        seeds = [_corrected(run, name, pool) for run in outcomes_by_seed]
        points = np.array([point for point, _ in seeds])
        b, t = corrected["b"][0], corrected["t"][0]
        if not np.isfinite([*points, b, t]).all() or t == b:
            continue
        per_seed = np.stack([samples for _, samples in seeds])
        drawn = rng.integers(0, len(seeds), size=(per_seed.shape[1], len(seeds)))
        corrected["s"] = (float(points.mean()), hierarchical_samples(per_seed, drawn=drawn))
        outcome = outcomes_by_seed[0][name]
        compared = corrected_transfer_rows(outcome, corrected, pool.get(outcome.n), pool.config.confidence)
        if not compared:
            continue
        rows.extend(compared)
        spread = float(np.std((points - b) / (t - b), ddof=1))
        rows.append(MetricRow(name, None, "", TRANSFER + SPREAD_SUFFIX, spread, None, None, len(points)))
    return rows


def _corrected(run: Mapping[str, SetOutcome], name: str, pool: BootstrapPool) -> tuple[float, np.ndarray]:
    return accuracy_summary(run[name], run[CLEAN], pool).chance_corrected_ratio(WHOLE_SET)


def _statistic(summary: object, metric: str) -> tuple[float, np.ndarray]:
    if metric == "accuracy":
        return summary.accuracy(WHOLE_SET)
    if metric == "bias_ratio":
        return summary.ratio(WHOLE_SET)
    return summary.chance_corrected_ratio(WHOLE_SET)


def pooled_record(name: str, seeds: Sequence[RunRecord], rows: Sequence[MetricRow]) -> RunRecord:
    """The leaderboard's record of the pooled model: the first seed's identity, the pooled rows, its seeds."""
    first = seeds[0]
    kd = {k: v for k, v in first.kd.items() if k != SEED_OF}
    return replace(
        first,
        model=name,
        checkpoint={"sha256": "", "seeds": [record.checkpoint.get("sha256") for record in seeds]},
        metrics=tuple(rows),
        kd={**kd, "seeds": [record.run_id for record in seeds]},
        logits="",
    )
