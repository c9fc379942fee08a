"""List every registered set: the cue it isolates, its severity levels, parameters and backends."""

from __future__ import annotations

import argparse

from libkd_bench.commands import print_columns

NAME = "list-sets"
HELP = "list the derived sets, their cues, severities and parameters"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from libkd_bench.datasets_gen.registry import get_generator, list_generators

    rows = []
    for name in list_generators():
        entry = get_generator(name)
        severities = (
            f"{entry.severity_parameter}={','.join(str(v) for v in entry.severities)}"
            if entry.severity_parameter
            else "-"
        )
        parameters = ", ".join(f"{k}={v}" for k, v in entry.defaults.items()) or "-"
        backends = ",".join(entry.backends) + (f" (={entry.backend_of})" if entry.backend_of else "") or "-"
        rows.append((name, entry.cue.value, severities, parameters, backends, entry.description))
    header = ("set", "cue", "severities", "parameters", "backends", "construction")
    print_columns(header, rows)
    entries = [get_generator(name) for name in list_generators()]
    for root in sorted({entry.backend_of for entry in entries if entry.backend_of}):
        group = ", ".join([root, *(entry.name for entry in entries if entry.backend_of == root)])
        print(f"(={root}): uses the backend of set {root}; choosing one for any of {group} chooses it for all")
    external = [entry for entry in entries if entry.external is not None]
    for licence, citation in dict.fromkeys((e.external.licence, e.external.citation) for e in external):
        names = ", ".join(e.name for e in external if (e.external.licence, e.external.citation) == (licence, citation))
        print(f"external ({names}): not made from the clean split, ratios unpaired; licence {licence}; cite {citation}")
    return 0
