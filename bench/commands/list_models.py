"""List the registered architectures (name, family, parameters, default preprocessing, source) and the zoo.

``PATTERN`` is a part of the name (``resnet20`` lists every name containing it) or a shell-style pattern
(``'resnet*_a'``); zoo checkpoints are filtered the same way. ``'timm:PATTERN'`` lists matching timm models
instead. The training recipes are listed by ``libkd-bench list-recipes``.
"""

from __future__ import annotations

import argparse

from libkd_bench.commands import print_columns

NAME = "list-models"
HELP = "list the registered architectures and zoo checkpoints"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pattern", nargs="?", default="*", metavar="PATTERN", help="part of the name, or a shell-style pattern"
    )


def name_pattern(text: str) -> str:
    """A shell-style pattern as it is; anything else matches the names that contain it."""
    return text if any(character in text for character in "*?[") else f"*{text}*"


def run(args: argparse.Namespace) -> int:
    from libkd_bench.core.errors import BenchError
    from libkd_bench.models.loading.detect import DEFAULT_NUM_CLASSES, signature
    from libkd_bench.models.registry import get_architecture, list_architectures
    from libkd_bench.models.zoo import ZOO

    if args.pattern.startswith("timm:"):
        import timm

        names = timm.list_models(args.pattern[len("timm:") :] or "*")
        if not names:
            raise BenchError(f"no timm model matches {args.pattern!r}")
        print("\n".join(f"timm:{name}" for name in names))
        return 0
    import fnmatch

    pattern = name_pattern(args.pattern)
    names = list_architectures(pattern)
    if not names:
        raise BenchError(f"no architecture matches {args.pattern!r}; 'libkd-bench list-models' lists them all")
    rows = []
    for name in names:
        entry = get_architecture(name)
        millions = signature(entry, DEFAULT_NUM_CLASSES).num_parameters / 1e6
        defaults = entry.defaults
        preset = defaults.preset.value if defaults.preset else "explicit"
        rows.append((name, entry.family, f"{millions:.2f}M", preset, str(defaults.input_size), entry.description))
    print_columns(("architecture", "family", "params", "preset", "input", "description"), rows)
    print("timm:NAME   any timm model, resized to its input size ('libkd-bench list-models timm:PATTERN' lists them)")
    zoo = [
        e
        for e in ZOO.values()
        if fnmatch.fnmatchcase(e.name, pattern) or fnmatch.fnmatchcase(e.spec.arch or "", pattern)
    ]
    if zoo:
        print()
        zoo_rows = [(f"zoo:{e.name}", e.spec.arch or "-", e.description) for e in zoo]
        print_columns(("zoo checkpoint", "architecture", "description"), zoo_rows)
    return 0
