"""One module per subcommand: ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

Modules here import only argparse-level code at the top; everything heavy is imported inside ``run``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def print_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table: every column padded to its widest cell except the last, which runs free."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False)) + "  " + str(row[-1]))


def seed(text: str) -> int:
    """argparse type of every seed: a whole number in numpy's range 0..2**32-1 (negative seeds are refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give a seed such as 0") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{2**32 - 1}; give a seed such as 0")
    return value
