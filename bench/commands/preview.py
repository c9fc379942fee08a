"""Draw a contact sheet of a set store: a row per set and severity, the same labelled images in each."""

from __future__ import annotations

import argparse
from argparse import SUPPRESS
from pathlib import Path

from libkd_bench.commands import deprecated

NAME = "preview"
HELP = "draw a contact sheet (PNG) of the sets in a store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sets-dir", type=Path, help="set store (default: $LIBKD_BENCH_SETS or ./sets)")
    parser.add_argument("--png", type=Path, default=Path("preview.png"), help="PNG to write (default preview.png)")
    parser.add_argument("--sets", help="comma-separated sets or families to show (default: all in the store)")
    parser.add_argument("old_sets_dir", nargs="?", type=Path, help=SUPPRESS)  # SETS_DIR before --sets-dir
    parser.add_argument("--out", dest="png", type=Path, action=deprecated("--out", "--png"), help=SUPPRESS)
    parser.add_argument("--examples", type=int, default=10, help="images per row (default 10: one per class)")


def run(args: argparse.Namespace) -> int:
    import warnings

    from libkd_bench.core.errors import BenchError, BenchWarning
    from libkd_bench.core.locations import default_sets_dir
    from libkd_bench.datasets_gen.preview import render_contact_sheet
    from libkd_bench.datasets_gen.registry import parse_set_names
    from libkd_bench.datasets_gen.store import SetStore

    if args.old_sets_dir is not None:
        if args.sets_dir is not None:
            raise BenchError("give the set store once: --sets-dir DIR")
        warnings.warn(
            "a positional SETS_DIR is deprecated and will be removed; use --sets-dir", BenchWarning, stacklevel=2
        )
    sets_dir = args.sets_dir or args.old_sets_dir or default_sets_dir()
    if not sets_dir.is_dir():
        raise BenchError(f"{sets_dir} is not a directory; pass the --sets-dir folder of generate-sets")
    if args.png.is_dir():
        example = args.png / "preview.png"
        raise BenchError(f"--png {args.png} is a directory; give the PNG's file name, e.g. --png {example}")
    if args.examples < 1:
        raise BenchError(f"--examples must be at least 1, got {args.examples}")
    store = SetStore(sets_dir)
    names = None
    if args.sets:  # a family shows its members in the store; a set named on its own must be there
        named = {n.strip() for n in args.sets.split(",")}
        names = [n for n in parse_set_names(args.sets) if n in store.names() or n in named]
    for name in names or []:
        if name not in store.names():
            raise BenchError(f"set {name!r} is not in {sets_dir}; present: {', '.join(store.names()) or 'none'}")
    out = render_contact_sheet(store, args.png, names, args.examples)
    print(f"wrote {out}")
    return 0
