"""Generate derived CIFAR-10 test sets into a set store (identical existing sets are reused)."""

from __future__ import annotations

import argparse
import contextlib
import os
from argparse import SUPPRESS
from pathlib import Path

from libkd_bench.commands import deprecated, seed
from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import add_executor_arguments
from libkd_bench.core.locations import SETS_ENV, default_sets_dir

NAME = "generate-sets"
HELP = "generate the derived test sets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sets", help="comma-separated sets or families, e.g. corruptions (default: every set but opt-in families)"
    )
    parser.add_argument("--source", default="cifar10", help="cifar10 (default), npz:PATH or folder:PATH")
    parser.add_argument(
        "--data-root",
        type=Path,
        help="CIFAR-10 cache directory (default: $LIBKD_BENCH_DATA or ~/.cache/libkd-bench/data)",
    )
    parser.add_argument("--sets-dir", type=Path, help=f"set store directory (default: ${SETS_ENV} or ./sets)")
    parser.add_argument("--out", dest="sets_dir", type=Path, action=deprecated("--out", "--sets-dir"), help=SUPPRESS)
    parser.add_argument("--seed", type=seed, default=0, help="root seed of every set (default 0)")
    parser.add_argument("--limit", type=int, help="keep a class-balanced subset of N images")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (output is identical for any count)",
    )
    parser.add_argument(
        "--backend",
        default="",
        help="backend per set, e.g. shape=fcn,texture=gatys (sets marked (=X) in list-sets share X's backend)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="SET.KEY=VALUE",
        help="override a set parameter, e.g. superpixel.compactness=20 (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild sets even when an identical one exists")
    add_executor_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_assignments(text: str, what: str) -> dict[str, str]:
    """``a=x,b=y`` -> {"a": "x", "b": "y"}; anything else is a one-line error."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise BenchError(f"{what} {item!r} is not NAME=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_parameters(items: list[str]) -> dict[str, dict[str, object]]:
    """``["superpixel.compactness=20"]`` -> {"superpixel": {"compactness": 20}} (numbers parsed as numbers)."""
    import json

    parameters: dict[str, dict[str, object]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        set_name, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise BenchError(f"--param {item!r} is not SET.KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parameters.setdefault(set_name, {})[key] = value
    return parameters


def run(args: argparse.Namespace) -> int:
    from libkd_bench.core.atomic_io import ensure_writable_dir, removed_if_left_empty
    from libkd_bench.core.executor import cluster_executor
    from libkd_bench.datasets_gen.build import build_sets, plan_sets
    from libkd_bench.datasets_gen.registry import parse_set_names
    from libkd_bench.datasets_gen.sources import load_source
    from libkd_bench.datasets_gen.store import SetStore

    names = parse_set_names(args.sets)
    backends = parse_assignments(args.backend, "--backend")
    parameters = parse_parameters(args.param)
    plans = plan_sets(names, args.seed, parameters, backends)
    executor = cluster_executor(args.executor, args.workers, args.ray_address, args.ray_data)  # connects on entry
    out = Path(args.sets_dir or default_sets_dir())
    with removed_if_left_empty(out):
        ensure_writable_dir(out)
        split = load_source(args.source, args.data_root, args.limit)
        with executor or contextlib.nullcontext():
            reports = build_sets(
                plans,
                split,
                SetStore(out),
                workers=args.workers,
                force=args.force,
                progress=not args.no_progress,
                executor=executor,
            )
    print(f"source {split.info.id} ({split.info.kind.value}:{split.info.location}, {split.info.n} images) -> {out}")
    for report in reports:
        print(f"  {report.name:<16} {report.status:<7} {report.seconds:7.1f} s  {report.path}")
    return 0
