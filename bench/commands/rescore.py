"""Recompute every metric of scored runs from their logits caches, without a forward pass, and rewrite the records.

Useful after a change to the metrics or the bootstrap settings. Teacher and baseline runs named in a record
are read from the same results directory. A run whose cache is missing fails with the path it expected.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from libkd_bench.commands import seed
from libkd_bench.records.run_record import DEFAULT_RESULTS

if TYPE_CHECKING:
    from libkd_bench.metrics.bootstrap import BootstrapConfig
    from libkd_bench.records.run_record import RunRecord
    from libkd_bench.scoring.reference_runs import KdContext, ReferenceRun

NAME = "rescore"
HELP = "recompute metrics of scored runs from their logits caches"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run id <model>@<source id>, model name, or record path")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory (default ./results)")
    parser.add_argument("--bootstrap-resamples", type=int, help="bootstrap resamples (default: as recorded)")
    parser.add_argument("--bootstrap-seed", type=seed, help="bootstrap seed (default: as recorded)")
    parser.add_argument("--json", action="store_true", help="print the rewritten records as JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    from libkd_bench.records.run_record import write_record
    from libkd_bench.reports.summary_table import format_run_summary
    from libkd_bench.scoring.reference_runs import find_run
    from libkd_bench.scoring.rescore import rescore_record
    from libkd_bench.scoring.stored_outcomes import load_run_outcomes

    runs = [find_run(text, args.results) for text in args.runs]
    records = []
    for target in runs:
        record, results = target.record, target.results
        outcomes = load_run_outcomes(record, results)
        kd = kd_context(record, results)
        rescored = rescore_record(record, outcomes, kd, bootstrap_config(record, args), results)
        write_record(results, rescored)
        records.append(rescored)
        if not args.json:
            print(format_run_summary(rescored))
    if args.json:
        print(json.dumps([record.to_json() for record in records], indent=2, sort_keys=True, allow_nan=False))
    return 0


def kd_context(record: RunRecord, results: Path) -> KdContext:
    """The record's teacher and baseline runs, looked up by run id in the same results directory."""
    from libkd_bench.records.comparison import Role
    from libkd_bench.scoring.reference_runs import KdContext, resolve_run

    def reference(role: Role) -> ReferenceRun | None:
        name = record.kd.get(role.value)
        return resolve_run(str(name), results, record.source_id, role) if name else None

    control = record.kd.get("recipe_control")
    return KdContext(
        reference(Role.TEACHER),
        reference(Role.BASELINE),
        record.kd.get("method"),
        recipe_control=resolve_run(str(control), results, record.source_id, Role.RECIPE_CONTROL) if control else None,
        seed_of=record.kd.get("seed_of"),
    )


def bootstrap_config(record: RunRecord, args: argparse.Namespace) -> BootstrapConfig:
    """The flags' bootstrap settings, else those the record was scored with."""
    from libkd_bench.metrics.bootstrap import BootstrapConfig

    resamples = args.bootstrap_resamples
    seed = args.bootstrap_seed
    return BootstrapConfig(
        resamples=int(record.scoring.get("bootstrap_resamples", 1000)) if resamples is None else resamples,
        seed=int(record.scoring.get("bootstrap_seed", 0)) if seed is None else seed,
    )
