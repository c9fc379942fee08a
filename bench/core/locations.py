"""Paths as records show them: where the user said, never where this machine keeps it.

A record, manifest or leaderboard made on one machine is read on others (committed results, CI artifacts), so
it stores a location the way the user gave it, normalised (``a/../b`` is ``b``, the home folder is ``~``) and
never made absolute; what identifies the input is its hash.
"""

from __future__ import annotations

import os

HOME = "~"


def as_given(path: str | os.PathLike[str]) -> str:
    """``path`` normalised lexically, with the home folder written ``~``; relative paths stay relative."""
    text = os.path.normpath(os.fspath(path))
    home = os.path.normpath(os.path.expanduser(HOME))
    if home not in (HOME, os.sep) and (text == home or text.startswith(home + os.sep)):
        return HOME + text[len(home) :]
    return text
