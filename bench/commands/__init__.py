"""One module per subcommand: ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

Modules here import only argparse-level code at the top; everything heavy is imported inside ``run``.
"""

from __future__ import annotations

from collections.abc import Sequence


def print_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a plain-text table: every column padded to its widest cell except the last, which runs free."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False)) + "  " + str(row[-1]))
