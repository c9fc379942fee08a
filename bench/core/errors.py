"""The one exception type that reaches the user as a single line and exit code 2.

Library code raises :class:`BenchError` (or a subclass) for anything the user can fix: a missing file, an
unknown set name, a corrupt checkpoint. The message names the problem and the fix. Only ``libkd_bench.cli`` turns
it into output and an exit code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A problem with the user's input; the message is shown as is, on one line."""

    exit_code = 2


class BenchWarning(UserWarning):
    """Something the user should know that does not stop the work (a damaged cache entry being recomputed).

    The command line shows it as one ``libkd-bench: warning: ...`` line.
    """


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    """Message for an unknown registry name that lists the close matches (or all names when none is close)."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
    return f"unknown {kind} {name!r}; {hint}"
