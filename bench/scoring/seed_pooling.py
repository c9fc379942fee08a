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
from libkd_bench.records.seed_groups import pooled_record, seed_group_rows, seed_groups
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
        rows = seed_group_rows(outcomes, BootstrapPool(bootstrap), rng)
        pooled.append(pooled_record(name, seeds, rows))
    return pooled
