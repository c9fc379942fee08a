"""Paths as records show them: where the user said, never where this machine keeps it.

A record, manifest or leaderboard made on one machine is read on others (committed results, CI artifacts), so
it stores a location the way the user gave it, normalised (``a/../b`` is ``b``, the home folder is ``~``) and
never made absolute; what identifies the input is its hash.

Also the default location of the set store, which every command that reads or writes one shares, and the
prefix of the zoo's checkpoint references (``zoo:NAME``), which records show instead of the weights' path.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME = "~"
SETS_ENV = "LIBKD_BENCH_SETS"
ZOO_PREFIX = "zoo:"


def default_sets_dir() -> Path:
    """The set store when none is named: ``$LIBKD_BENCH_SETS``, else ``./sets``."""
    return Path(os.environ.get(SETS_ENV, "sets"))


def as_given(path: str | os.PathLike[str]) -> str:
    """``path`` normalised lexically, with the home folder written ``~``; relative paths stay relative."""
    text = os.path.normpath(os.fspath(path))
    home = os.path.normpath(os.path.expanduser(HOME))
    if home not in (HOME, os.sep) and (text == home or text.startswith(home + os.sep)):
        return HOME + text[len(home) :]
    return text
