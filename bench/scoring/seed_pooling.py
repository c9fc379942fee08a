"""Pooled records of models scored with several training seeds, built from the seeds' logits caches.

The leaderboard calls this with the records it read: for each model named by ``--seed-of`` on two or more runs
of one clean split, it loads every seed's outcomes from its cache and returns one record of pooled rows
(libkd_bench.records.seed_groups), named by the model, to be shown in the seeds' place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.records.run_record import RunRecord
from libkd_bench.records.seed_groups import pooled_record, seed_group_rows, seed_group_transfer_rows, seed_groups
from libkd_bench.records.summary import BootstrapPool
from libkd_bench.scoring.stored_outcomes import load_run_outcomes


def pooled_seed_records(records: Sequence[RunRecord], results: Path) -> list[RunRecord]:
    """One pooled record per seed group of ``records`` (caches read under ``results``).

    Raises:
        BenchError: a group's name is also a scored run's model name, or a seed's cache is missing.
    """
    pooled = []
    for (source_id, name), seeds in sorted(seed_groups(records).items()):
        if any(r.model == name and r.source_id == source_id for r in records):
            raise BenchError(
                f"--seed-of {name!r} is also the name of a scored run on {source_id}; give the seeds' group "
                "another name or rename that run"
            )
        bootstrap = BootstrapConfig(
            resamples=int(seeds[0].scoring.get("bootstrap_resamples", 1000)),
            seed=int(seeds[0].scoring.get("bootstrap_seed", 0)),
        )
        outcomes = [load_run_outcomes(record, results) for record in seeds]
        rng = np.random.default_rng([bootstrap.seed, len(seeds)])
        pool = BootstrapPool(bootstrap)
        rows = seed_group_rows(outcomes, pool, rng)
        references = _shared_references(seeds, records)
        if references is not None:
            teacher, baseline, control = (None if r is None else load_run_outcomes(r, results) for r in references)
            rows += seed_group_transfer_rows(outcomes, teacher, baseline, pool, rng, control)
        pooled.append(pooled_record(name, seeds, rows))
    return pooled


def _shared_references(
    seeds: Sequence[RunRecord], records: Sequence[RunRecord]
) -> tuple[RunRecord, RunRecord, RunRecord | None] | None:
    """The teacher, baseline and recipe-control runs every seed names (the control may be absent), or None when
    the seeds have no teacher and baseline, name different ones, or one of them is not among ``records``."""
    by_id = {record.run_id: record for record in records}
    found = []
    for role in ("teacher", "baseline", "recipe_control"):
        named = {record.kd.get(role) for record in seeds}
        if len(named) != 1:
            return None
        (run,) = named
        if run is None:
            if role != "recipe_control":
                return None
            found.append(None)
            continue
        if str(run) not in by_id:
            return None
        found.append(by_id[str(run)])
    teacher, baseline, control = found
    return teacher, baseline, control
