"""Check that a set store measures what it claims, and that the checks themselves can fail.

Three kinds of evidence are judged, each on its 95 % interval: known answers of control models whose bias is
fixed by construction (a colour histogram, a bag of local features, a shape-only net) and of the zoo's CIFAR
ResNets; probes trained on the sets themselves (nuisance geometry of silhouettes, fill luminance of cue-conflict
images, scene colours in textures); a known answer for every default set. ``--mutants`` then builds broken
variants of the store's own sets in a temporary folder (never in the store), each from the set's own generator
with one part changed, runs every check on each and prints which checks caught it. Exit 0 when every check
passes and every mutant is caught, 1 otherwise, 2 for bad input (a missing set, a store too small for its checks
to decide, a missing model). Predictions are cached under --results, so a second run is fast.
The ResNets come from the zoo like every zoo model: offline, point LIBKD_BENCH_ZOO_DIR at their files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libkd_bench.validation.judging import Judgement
    from libkd_bench.validation.session import MutantResult

NAME = "validate"
HELP = "check a set store with control models and probes; --mutants: check that broken sets are caught"
RESULTS_SUBDIR = "_validation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sets-dir", type=Path, help="set store (default: $LIBKD_BENCH_SETS or ./sets)")
    parser.add_argument(
        "--results", type=Path, help=f"where the logits cache goes (default: SETS_DIR/{RESULTS_SUBDIR})"
    )
    parser.add_argument(
        "--mutants",
        nargs="?",
        const="all",
        metavar="NAMES",
        help="also build broken variants of the sets (all, or comma-separated names) and report which checks "
        "catch each",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, help="images per forward pass")
    parser.add_argument("--no-progress", action="store_true", help="hide progress lines")
    parser.add_argument("--json", action="store_true", help="print the judgements as JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    from libkd_bench.core.atomic_io import ensure_writable_dir
    from libkd_bench.core.locations import default_sets_dir
    from libkd_bench.core.torch_runtime import resolve_device
    from libkd_bench.datasets_gen.mutants import select_mutants
    from libkd_bench.datasets_gen.store import SetStore
    from libkd_bench.scoring.forward import EngineConfig
    from libkd_bench.scoring.sets import load_scoring_sets
    from libkd_bench.validation.evidence import ModelPool
    from libkd_bench.validation.known_answers import VALIDATION_MODELS
    from libkd_bench.validation.session import Validation, all_checks, require_sample, require_sets

    sets_dir = Path(args.sets_dir or default_sets_dir())
    mutants = select_mutants(args.mutants) if args.mutants else []
    load_scoring_sets(sets_dir, None)  # every set verified against its hashes and its clean split, once
    real = SetStore(sets_dir)
    checks = all_checks(real.names())
    require_sets(real, checks)
    device = resolve_device(args.device)
    pool = ModelPool(list(VALIDATION_MODELS), str(device))  # every model located before any work
    require_sample(real, checks)
    results = ensure_writable_dir(args.results or sets_dir / RESULTS_SUBDIR)

    def progress(model: str, set_name: str) -> None:
        if not args.no_progress:
            print(f"validate: {model} on {set_name}", file=sys.stderr, flush=True)

    validation = Validation(real, results, pool, EngineConfig(str(device), args.batch_size), progress=progress)
    judgements = validation.judge_real()
    mutant_results = validation.judge_mutants(mutants) if mutants else []
    if args.json:
        payload = {
            "judgements": [judgement_json(j) for j in judgements],
            "mutants": [mutant_json(m) for m in mutant_results],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(format_judgements(judgements, sets_dir))
        if mutants:
            print()
            print(format_mutants(mutant_results))
    ok = all(j.passed for j in judgements) and all(m.caught for m in mutant_results)
    return 0 if ok else 1


def _interval(judgement: Judgement) -> str:
    e = judgement.estimate
    if e is None:
        return "-"
    if e.low is None or e.high is None:
        return f"{e.value:.3f}"
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def judgement_json(judgement: Judgement) -> dict[str, object]:
    check, e = judgement.check, judgement.estimate
    return {
        "check": check.name,
        "sets": list(check.sets),
        "models": list(check.models),
        "expected": check.expected,
        "why": check.why,
        "verdict": judgement.verdict.value,
        "value": None if e is None else e.value,
        "ci": None if e is None else [e.low, e.high],
        "n": None if e is None else e.n,
        "detail": judgement.detail,
    }


def mutant_json(result: MutantResult) -> dict[str, object]:
    return {
        "mutant": result.mutant.name,
        "set": result.mutant.set,
        "description": result.mutant.description,
        "caught": result.caught,
        "caught_by": [j.check.name for j in result.caught_by],
        "failing_on_the_real_store_too": [j.check.name for j in result.failing_anyway],
    }


def format_judgements(judgements: list[Judgement], sets_dir: Path) -> str:
    from tabulate import tabulate

    rows = [(j.check.name, j.check.expected, _interval(j), j.detail, j.verdict.value) for j in judgements]
    table = tabulate(rows, headers=("check", "expected", "measured [95% CI]", "detail", "verdict"))
    failed = sum(1 for j in judgements if not j.passed)
    return f"checks on {sets_dir}\n{table}\n{len(judgements) - failed} passed, {failed} failed"


def format_mutants(results: list[MutantResult]) -> str:
    from tabulate import tabulate

    rows = [
        (
            r.mutant.name,
            r.mutant.set,
            r.mutant.description,
            len(r.caught_by),
            "; ".join(j.check.name for j in r.caught_by) or "NOTHING (escaped)",
        )
        for r in results
    ]
    table = tabulate(rows, headers=("mutant", "set", "broken construction", "caught", "caught by"))
    escaped = sum(1 for r in results if not r.caught)
    note = "a mutant counts as caught only by checks that pass on the real store"
    return f"mutants ({note})\n{table}\n{len(results) - escaped} caught, {escaped} escaped"
