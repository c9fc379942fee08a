"""Draw a contact sheet of a set store: a row per set and severity, the same labelled images in each."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "preview"
HELP = "draw a contact sheet (PNG) of the sets in a store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sets_dir", type=Path, metavar="SETS_DIR", help="a set store made by generate-sets")
    parser.add_argument("--out", type=Path, default=Path("preview.png"), help="PNG to write (default preview.png)")
    parser.add_argument("--sets", help="comma-separated sets to show (default: all in the store)")
    parser.add_argument("--examples", type=int, default=10, help="images per row (default 10: one per class)")


def run(args: argparse.Namespace) -> int:
    from libkd_bench.core.errors import BenchError
    from libkd_bench.datasets_gen.preview import render_contact_sheet
    from libkd_bench.datasets_gen.store import SetStore

    if not args.sets_dir.is_dir():
        raise BenchError(f"{args.sets_dir} is not a directory; pass the --out folder of generate-sets")
    if args.out.is_dir():
        example = args.out / "preview.png"
        raise BenchError(f"--out {args.out} is a directory; give the PNG's file name, e.g. --out {example}")
    if args.examples < 1:
        raise BenchError(f"--examples must be at least 1, got {args.examples}")
    store = SetStore(args.sets_dir)
    names = [n.strip() for n in args.sets.split(",")] if args.sets else None
    for name in names or []:
        if name not in store.names():
            raise BenchError(f"set {name!r} is not in {args.sets_dir}; present: {', '.join(store.names()) or 'none'}")
    out = render_contact_sheet(store, args.out, names, args.examples)
    print(f"wrote {out}")
    return 0
