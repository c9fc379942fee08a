"""The ``libkd-bench`` command line: one parser, one subcommand per module in ``libkd_bench.commands``.

``main(argv) -> int`` is what tests call; ``entrypoint()`` only hands its result to ``sys.exit``. Errors
become exit codes here and nowhere else: a :class:`~libkd_bench.core.errors.BenchError` is one line on stderr and
exit code 2. Command modules import heavy libraries inside ``run`` so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

import libkd_bench
from libkd_bench.core.errors import BenchError, BenchWarning

PROG = "libkd-bench"
# Write failures of the storage, not of the program: reported in one line with the fix (every write is atomic).
STORAGE_FAILURES = {
    errno.ENOSPC: "no space left on the device; free space there or choose another output folder",
    errno.EDQUOT: "disk quota exceeded; free space there or choose another output folder",
    errno.EROFS: "the file system is read-only; choose a writable output folder",
}
# Module names under libkd_bench.commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "generate_sets",
    "list_sets",
    "preview",
    "list_models",
    "inspect",
    "score",
    "rescore",
    "leaderboard",
    "check",
    "validate",
    "train",
    "list_recipes",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as a one-line BenchError instead of exiting itself."""

    def error(self, message: str) -> NoReturn:
        raise BenchError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Bias-evaluation benchmark for CIFAR-10 classifiers and their distilled students.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {libkd_bench.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"libkd_bench.commands.{module_name}")
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (0 ok, 1 a failed check, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version end parsing on purpose
            return int(exc.code or 0)
        if args.command is None:
            parser.print_help()
            return 2
        return int(args.run(args))
    except BenchError as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing partial was kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno not in STORAGE_FAILURES:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        reason = STORAGE_FAILURES[exc.errno]
        print(f"{PROG}: error: cannot write{where}: {reason}; nothing partial was kept", file=sys.stderr)
        return 2


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    if issubclass(category, BenchWarning):
        print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        _default_show_warning(message, category, filename, lineno, file, line)  # type: ignore[arg-type]


_default_show_warning = warnings.showwarning


def entrypoint() -> None:
    warnings.showwarning = _show_warning  # here, not in main(): tests record warnings themselves
    sys.exit(main())
