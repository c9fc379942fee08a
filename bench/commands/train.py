"""Train a recipe's model (optionally distilled from its teachers) and export it for scoring.

Writes OUT/RECIPE.safetensors and its sidecar OUT/RECIPE.safetensors.json (spec, plus how the weights were
made: recipe, method, teachers, baseline, schedule, training time, clean accuracy). A checkpoint is saved to
the work directory after every epoch; running the same command again continues from it. Teachers named
``recipe:NAME`` are read from --teacher-dir or OUT; zoo teachers from --teacher-dir (an offline copy of the
zoo files, as $LIBKD_BENCH_ZOO_DIR) or the zoo cache.
"""

from __future__ import annotations

import argparse
import os
import sys
from argparse import SUPPRESS
from pathlib import Path

from libkd_bench.commands import deprecated, print_recipes

NAME = "train"
HELP = "train a recipe's model (baseline or distilled student) and export safetensors + sidecar"
DATA_ENV = "LIBKD_BENCH_TRAIN_DATA"
DEFAULT_OUT = Path("trained")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", metavar="RECIPE", help="recipe name (libkd-bench list-recipes shows them)")
    parser.add_argument("--list", action=deprecated("train --list", "list-recipes"), nargs=0, help=SUPPRESS)
    parser.add_argument(
        "--data", help=f"train split: a train-jpeg.npz (jpeg, offsets, y) or npz:PATH with x, y (default: ${DATA_ENV})"
    )
    parser.add_argument(
        "--test-data", help="test split npz (x, y) for the clean accuracy (default: test.npz beside --data)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the weights go (default ./trained)")
    parser.add_argument(
        "--workdir", type=Path, help="per-epoch checkpoint and teacher logits (default OUT/work/RECIPE)"
    )
    parser.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    parser.add_argument("--stop-after", type=int, metavar="N", help="train at most N epochs now; rerun to continue")
    parser.add_argument("--limit", type=int, help="train on the first N images only (for quick checks)")
    parser.add_argument("--test-limit", type=int, help="measure clean accuracy on the first N test images only")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("--teacher-dir", type=Path, help="folder with teacher files: zoo files and RECIPE.safetensors")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _test_reference(args: argparse.Namespace, data: str) -> str:
    from libkd_bench.core.errors import BenchError

    if args.test_data:
        return args.test_data
    sibling = Path(data.removeprefix("npz:")).with_name("test.npz")
    if not sibling.is_file():
        raise BenchError(f"no test split found at {sibling}; give --test-data PATH (an npz with x, y)")
    return str(sibling)


def run(args: argparse.Namespace) -> int:
    if args.list:
        print_recipes()
        return 0
    from libkd_bench.core.errors import BenchError

    if args.recipe is None:
        raise BenchError("name a recipe to train ('libkd-bench list-recipes' shows them)")
    data = args.data or os.environ.get(DATA_ENV)
    if not data:
        raise BenchError(f"no training data: give --data PATH (a train-jpeg.npz or npz:PATH) or set {DATA_ENV}")
    for flag in ("epochs", "stop_after", "limit", "test_limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise BenchError(f"--{flag.replace('_', '-')} must be a positive integer, got {value}")
    if args.teacher_dir is not None and not args.teacher_dir.is_dir():
        raise BenchError(f"--teacher-dir {args.teacher_dir} is not a folder; point it at the teachers' files")

    from libkd_bench.core.torch_runtime import resolve_device
    from libkd_bench.models.training.data import load_split
    from libkd_bench.models.training.recipe import get_recipe
    from libkd_bench.models.training.run import train_and_export
    from libkd_bench.models.zoo import MIRROR_ENV

    recipe = get_recipe(args.recipe)
    if args.epochs is not None:
        recipe = recipe.with_epochs(args.epochs)
    device = resolve_device(args.device)
    if device.type == "cuda":
        import torch

        torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN pick its fastest kernels once
    if args.teacher_dir is not None:
        os.environ[MIRROR_ENV] = str(args.teacher_dir)
    train_split = load_split(data, args.limit)
    test_split = load_split(_test_reference(args, data), args.test_limit)
    search = [p for p in (args.teacher_dir, args.out) if p is not None]
    workdir = args.workdir or args.out / "work" / recipe.name
    total = recipe.train.epochs

    def report(log: object) -> None:
        print(f"{recipe.name}: {log.line(total)}", file=sys.stderr, flush=True)  # type: ignore[attr-defined]

    outcome = train_and_export(
        recipe,
        train_split,
        test_split,
        out=args.out,
        workdir=workdir,
        device=device,
        teacher_search=search,
        progress=not args.no_progress,
        on_epoch=report,
        stop_after=args.stop_after,
    )
    if outcome.exported is None:
        done = len(outcome.result.logs)
        print(f"{recipe.name}: stopped after epoch {done}/{total}; run the same command again to continue")
        return 0
    exported = outcome.exported
    print(
        f"{recipe.name}: {exported.path} ({exported.dtype}, sha256 {exported.sha256}): clean acc "
        f"{100 * exported.clean_accuracy:.2f}% on {len(test_split)} images, "
        f"trained {outcome.result.train_seconds:.0f} s"
    )
    return 0
