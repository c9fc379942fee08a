"""List every registered set: the cue it isolates and its levels; ``list-sets SET`` shows one set in full."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING

from libkd_bench.commands import print_columns

if TYPE_CHECKING:
    from libkd_bench.datasets_gen.registry import GeneratorEntry

NAME = "list-sets"
HELP = "list the derived sets and their cues; list-sets SET shows one set's parameters, backends and construction"
WIDTH = 100  # the table fits a 100-column terminal; the last column is cut with an ellipsis
ELLIPSIS = "…"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("set", nargs="?", metavar="SET", help="a set to show in full (default: list all)")


def run(args: argparse.Namespace) -> int:
    from libkd_bench.core.errors import BenchError, unknown_name_message
    from libkd_bench.datasets_gen.registry import get_generator, list_generators

    names = list_generators()
    if args.set is not None:
        if args.set not in names:
            raise BenchError(unknown_name_message("set", args.set, names))
        print(set_details(get_generator(args.set)))
        return 0
    rows = [_summary_row(get_generator(name)) for name in names]
    header = ("set", "cue", "levels", "construction")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    room = WIDTH - sum(widths) - 2 * len(widths)
    print_columns(header, [(*row[:-1], _cut(row[-1], room)) for row in rows])
    entries = [get_generator(name) for name in names]
    external = [entry for entry in entries if entry.external is not None]
    for licence in dict.fromkeys(entry.external.licence for entry in external):
        same = [entry.name for entry in external if entry.external.licence == licence]
        citation = next(entry.external.citation for entry in external if entry.external.licence == licence)
        words = citation.replace(",", " ").split()
        doi = next((w.rstrip(";.") for w in words if w.startswith("doi:")), "")
        text = (
            f"external ({', '.join(same)}): not made from the clean split, ratios unpaired; licence {licence}; "
            f"cite {doi or 'as list-sets SET says'}"
        )
        print(textwrap.fill(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False))
    print("\nparameters, backends and the full construction of one set: libkd-bench list-sets SET")
    return 0


def set_details(entry: GeneratorEntry) -> str:
    """Everything ``list-sets SET`` says about one set, wrapped to :data:`WIDTH` columns."""
    from libkd_bench.datasets_gen.registry import get_generator, list_generators

    lines = [
        ("set", entry.name),
        ("cue", entry.cue.value),
        ("levels", _levels(entry, full=True)),
        ("parameters", ", ".join(f"{k}={v}" for k, v in entry.defaults.items()) or "-"),
        ("backends", ", ".join(entry.backends) or "-"),
        ("construction", entry.description),
        ("made from", ", ".join(entry.requires) or "the clean split"),
    ]
    if entry.backend_of:
        group = [n for n in list_generators() if get_generator(n).backend_of == entry.backend_of]
        lines.append(
            (
                "backend",
                f"shared with set {entry.backend_of}: choosing one for any of "
                f"{', '.join([entry.backend_of, *group])} chooses it for all",
            )
        )
    if entry.external is not None:
        lines.append(("external", "not made from the clean split: its ratios are unpaired"))
        lines.append(("licence", entry.external.licence))
        lines.append(("cite", entry.external.citation))
    label_width = max(len(label) for label, _ in lines) + 2
    wrapper = textwrap.TextWrapper(width=WIDTH, subsequent_indent=" " * label_width, break_on_hyphens=False)
    return "\n".join(wrapper.fill(f"{label:<{label_width}}{text}") for label, text in lines)


def _summary_row(entry: GeneratorEntry) -> tuple[str, str, str, str]:
    """The table's row: the construction without its parenthesised details (``list-sets SET`` has them)."""
    return (entry.name, entry.cue.value, _levels(entry, full=False), entry.description.split(" (", 1)[0])


def _levels(entry: GeneratorEntry, *, full: bool) -> str:
    """``grid=2,4,8``; in the table a list of more than three is shortened to its ends (``n_segments=256..16``)."""
    if not entry.severity_parameter:
        return "-"
    values = [str(v) for v in entry.severities]
    listed = f"{values[0]}..{values[-1]}" if not full and len(values) > 3 else ",".join(values)
    return f"{entry.severity_parameter}={listed}"


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(room - 1, 0)].rstrip() + ELLIPSIS
