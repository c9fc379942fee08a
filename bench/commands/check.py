"""Guard results in CI: compare tracked metrics of the current results with a committed baseline CSV.

Both files are long leaderboard CSVs (libkd-bench leaderboard writes one); --results DIR builds the current
one in memory from the run records instead. Tracked: the --metrics rows (default bias_ratio and shape_bias),
whole-set and per-level, keyed by model, source, set, severity and metric.

Rule, with b the baseline value, c the current value, [lo, hi] the current 95% interval: |c - b| <= tolerance
passes; a drop beyond the tolerance is a regression only when significant, i.e. the current interval lies
entirely below the baseline value (hi < b) or the current row has no interval; otherwise it is reported as not
significant and passes. Rises beyond the tolerance are reported as improvements and pass (with --two-sided a
significant rise, lo > b, fails too). --strict fails on every change beyond the tolerance, whatever its
direction or significance: the guard for a fixed pipeline on fixed data that must reproduce its numbers.

Exit codes: 0 all tracked values pass; 1 regressions (a table of each on stdout); 2 bad input: a missing or
malformed CSV (missing columns, non-numeric values, duplicate keys), or a baseline model, set or row absent
from the current results. --update-baseline rewrites BASE.csv atomically from the current results, exit 0.
"""

from __future__ import annotations

import argparse
import sys
from argparse import SUPPRESS
from pathlib import Path

from libkd_bench.commands import deprecated
from libkd_bench.records.run_record import DEFAULT_RESULTS

NAME = "check"
HELP = "fail (exit 1) when tracked bias metrics regress significantly against a baseline CSV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--baseline-csv", type=Path, metavar="BASE.csv", help="committed baseline CSV (required)")
    parser.add_argument(
        "--baseline", dest="baseline_csv", type=Path, action=deprecated("--baseline", "--baseline-csv"), help=SUPPRESS
    )
    current = parser.add_mutually_exclusive_group()
    current.add_argument("--current", type=Path, metavar="CUR.csv", help="current long CSV (a leaderboard.csv)")
    current.add_argument(
        "--results", type=Path, help="build the current CSV from the run records in this directory (default ./results)"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.02, help="change that always passes, in fractions (default 0.02)"
    )
    parser.add_argument(
        "--metrics",
        default="bias_ratio,shape_bias",
        help="comma-separated metrics to track (default bias_ratio,shape_bias)",
    )
    parser.add_argument("--two-sided", action="store_true", help="also fail on significant rises beyond the tolerance")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on every change beyond the tolerance, up or down, significant or not",
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="rewrite BASE.csv from the current results (atomically) and exit 0",
    )


def run(args: argparse.Namespace) -> int:
    from libkd_bench.core.atomic_io import write_text_atomic
    from libkd_bench.core.errors import BenchError
    from libkd_bench.reports.leaderboard import format_long_csv, read_long_csv, written_long_frame
    from libkd_bench.reports.regression import CheckConfig, compare, format_report, parse_metrics

    if args.baseline_csv is None:
        raise BenchError("the following arguments are required: --baseline-csv (see 'libkd-bench check --help')")
    config = CheckConfig(args.tolerance, parse_metrics(args.metrics), args.two_sided, args.strict)
    if args.current is not None:
        current = read_long_csv(args.current, "current CSV")
    else:
        from libkd_bench.commands import load_records

        # As the CSV stores it, so --results and --current on the leaderboard.csv of the same records agree.
        current = written_long_frame(load_records(args.results or DEFAULT_RESULTS))
    if args.update_baseline:
        write_text_atomic(args.baseline_csv, format_long_csv(current))
        models = current[["model", "source"]].drop_duplicates()
        print(f"baseline {args.baseline_csv} updated: {len(current)} rows, {len(models)} model run(s)")
        return 0
    report = compare(read_long_csv(args.baseline_csv, "baseline CSV"), current, config)
    print(format_report(report), end="")
    if not report.passed:
        print(f"libkd-bench: check failed against {args.baseline_csv}", file=sys.stderr)
        return 1
    return 0
