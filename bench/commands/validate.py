"""Check that a set store measures what it claims: score the control models and print their known answers.

The controls (zoo:control-colour, zoo:control-bagnet, zoo:control-shape) have biases fixed by construction, and
the zoo's CIFAR ResNet-20 and -56 are the reference for the relative checks. Each is scored on the store like
any checkpoint (records and logits go to --results, so a second run is instant), then every known answer is
judged: expected value or direction, the measured value with its 95% interval, pass or fail. Exit 0 when
every check passes, 1 when one fails, 2 for bad input. Run it after building sets with another backend
(`--backend shape=fcn`, `texture=gatys`) or other `--param` values to learn whether those sets are valid.
The ResNets come from the zoo like every zoo model: offline, point LIBKD_BENCH_ZOO_DIR at their files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libkd_bench.reports.validity import Judgement

NAME = "validate"
HELP = "score the control models on a set store and check their known answers"
RESULTS_SUBDIR = "_validation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sets-dir", type=Path, help="set store (default: $LIBKD_BENCH_SETS or ./sets)")
    parser.add_argument(
        "--results", type=Path, help=f"where the controls' records and logits go (default: SETS_DIR/{RESULTS_SUBDIR})"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, help="images per forward pass")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--json", action="store_true", help="print the judgements as JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    from libkd_bench.commands.generate_sets import default_sets_dir
    from libkd_bench.core.atomic_io import ensure_writable_dir
    from libkd_bench.core.torch_runtime import resolve_device
    from libkd_bench.metrics.bootstrap import BootstrapConfig
    from libkd_bench.models.loading import load_model
    from libkd_bench.records.run_record import write_record
    from libkd_bench.reports.validity import VALIDATION_MODELS, judge_all, passed
    from libkd_bench.scoring.adversarial_settings import AdversarialConfig
    from libkd_bench.scoring.forward import EngineConfig
    from libkd_bench.scoring.reference_runs import KdContext
    from libkd_bench.scoring.run import ScoreOptions, score_model
    from libkd_bench.scoring.sets import load_scoring_sets

    sets_dir = Path(args.sets_dir or default_sets_dir())
    sets = load_scoring_sets(sets_dir, None)
    results = ensure_writable_dir(args.results or sets_dir / RESULTS_SUBDIR)
    device = resolve_device(args.device)
    options = ScoreOptions(
        engine=EngineConfig(str(device), args.batch_size),
        adversarial=AdversarialConfig(attacks=()),
        bootstrap=BootstrapConfig(),
        progress=not args.no_progress,
    )
    records = {}
    for name in VALIDATION_MODELS:
        loaded = load_model(f"zoo:{name}", device=str(device))
        record = score_model(loaded, name, sets, results, options, KdContext())
        write_record(results, record)
        records[name] = record
    judgements = judge_all(records)
    if args.json:
        print(json.dumps([judgement_json(j) for j in judgements], indent=2))
    else:
        print(format_judgements(judgements, sets_dir))
    return 0 if passed(judgements) else 1


def judgement_json(judgement: Judgement) -> dict[str, object]:
    check = judgement.check
    row, reference = judgement.measured, judgement.reference
    return {
        "model": check.model,
        "set": check.set,
        "severity": check.severity,
        "metric": check.metric,
        "expected": check.expected,
        "why": check.why,
        "verdict": judgement.verdict.value,
        "value": None if row is None else row.value,
        "ci": None if row is None else [row.ci_low, row.ci_high],
        "n": None if row is None else row.n,
        "versus": check.versus,
        "versus_value": None if reference is None else reference.value,
        "versus_ci": None if reference is None else [reference.ci_low, reference.ci_high],
    }


def format_judgements(judgements: list[Judgement], sets_dir: Path) -> str:
    from tabulate import tabulate

    from libkd_bench.records.run_record import format_row

    rows = []
    for j in judgements:
        check = j.check
        where = check.set if check.severity is None else f"{check.set} (level {check.severity})"
        expected = check.expected + (f" {format_row(j.reference, digits=3)}" if check.versus else "")
        rows.append(
            (check.model, where, check.metric, expected, format_row(j.measured, digits=3), j.verdict.value, check.why)
        )
    table = tabulate(rows, headers=("model", "set", "metric", "expected", "measured [95% CI]", "verdict", "why"))
    failed = sum(1 for j in judgements if j.verdict.value != "pass")
    summary = f"{len(judgements) - failed} passed, {failed} failed" if failed else f"{len(judgements)} passed, 0 failed"
    return f"known answers on {sets_dir}\n{table}\n{summary}"
