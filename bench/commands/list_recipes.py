"""List the training recipes ``libkd-bench train RECIPE`` runs: architecture, method, teachers, epochs."""

from __future__ import annotations

import argparse

from libkd_bench.commands import print_recipes

NAME = "list-recipes"
HELP = "list the training recipes (libkd-bench train RECIPE)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags: every recipe is listed."""


def run(args: argparse.Namespace) -> int:
    print_recipes()
    return 0
