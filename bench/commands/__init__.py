"""One module per subcommand: ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

Modules here import only argparse-level code at the top; everything heavy is imported inside ``run``. Command
modules never import each other (tests/test_layers.py): what several commands share lives here or in a lower
stage.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libkd_bench.records.run_record import RunRecord


def print_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table: every column padded to its widest cell except the last, which runs free."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False)) + "  " + str(row[-1]))


def deprecated(old: str, new: str) -> type[argparse.Action]:
    """An argparse action for an old spelling kept one release: stores like ``new`` (same ``dest``) and warns in
    one line (a :class:`~libkd_bench.core.errors.BenchWarning`). Give it ``help=argparse.SUPPRESS``."""

    class Deprecated(argparse.Action):
        def __call__(
            self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
        ) -> None:
            from libkd_bench.core.errors import BenchWarning

            warnings.warn(f"{old} is deprecated and will be removed; use {new}", BenchWarning, stacklevel=2)
            setattr(namespace, self.dest, True if self.nargs == 0 else values)

    return Deprecated


def seed(text: str) -> int:
    """argparse type of every seed: a whole number in numpy's range 0..2**32-1 (negative seeds are refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give a seed such as 0") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{2**32 - 1}; give a seed such as 0")
    return value


def load_records(results: Path) -> list[RunRecord]:
    """Every readable run record under ``results``; skipped files are named on stderr, one line each.

    Raises:
        BenchError: no readable record at all.
    """
    from libkd_bench.core.errors import BenchError
    from libkd_bench.records.run_record import RUNS_DIR, read_records

    records, skipped = read_records(results)
    for entry in skipped:
        print(f"libkd-bench: skipping {entry.path}: {' '.join(entry.reason.split())}", file=sys.stderr)
    if not records:
        raise BenchError(
            f"no readable run records under {results / RUNS_DIR}; score a checkpoint first "
            "(libkd-bench score CKPT --results DIR) or point --results at the right directory"
        )
    return records


def print_recipes() -> None:
    """The training recipes, one row each (``list-recipes``; ``train --list`` before it)."""
    from libkd_bench.models.training.recipe import get_recipe, recipe_names

    rows = []
    for name in recipe_names():
        recipe = get_recipe(name)
        teachers = "+".join(t.split(":", 1)[1] for t in recipe.teachers) or "-"
        rows.append((name, recipe.arch, recipe.method.value, teachers, str(recipe.train.epochs), recipe.description))
    print_columns(("recipe", "architecture", "method", "teachers", "epochs", "description"), rows)
