"""Progress of long work: a tqdm bar on a terminal, a periodic one-line report in logs.

A bar redrawn with carriage returns is unreadable in a CI log, and tqdm's own non-terminal fallback prints
nothing at all; so when stderr is not a terminal, :class:`LogProgress` writes one line every ``interval``
seconds (images done, rate, time left) and a last line when the work ends. Both have tqdm's ``update(n)`` and
context-manager interface, so callers do not care which they got.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import Any, Protocol, TextIO

INTERVAL_ENV = "LIBKD_BENCH_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 15.0


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any: ...

    def __enter__(self) -> Progress: ...

    def __exit__(self, *exc_info: object) -> Any: ...


class LogProgress:
    """``desc: 4,000/40,000 img (10%), 352 img/s, about 1m42s left`` every ``interval`` seconds on ``stream``; a
    postfix (``3/12 units``) follows the share when one is set."""

    def __init__(
        self, total: int, desc: str, unit: str = "img", interval: float | None = None, stream: TextIO | None = None
    ) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.interval = _interval() if interval is None else float(interval)
        self.stream = stream
        self.done = 0
        self.postfix = ""
        self._started = self._last = time.monotonic()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """tqdm's postfix: shown in the next line (``refresh`` is tqdm's and does nothing here)."""
        self.postfix = s

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        now = time.monotonic()
        if now - self._last >= self.interval and self.done < self.total:
            self._last = now
            self._write(now, final=False)

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        # a last line for work that took at least one interval; short work stays quiet, as on a terminal
        if kind is None and time.monotonic() - self._started >= self.interval:
            self._write(time.monotonic(), final=True)

    def _write(self, now: float, final: bool) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        if final:
            tail = f"done in {_duration(elapsed)}"
        elif rate > 0:
            tail = f"about {_duration((self.total - self.done) / rate)} left"
        else:
            tail = "starting"
        share += f", {self.postfix}" if self.postfix else ""
        line = f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}{share}, {rate:,.0f} {self.unit}/s, {tail}"
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "img", leave: bool = True) -> Progress:
    """A tqdm bar when stderr is a terminal, else a :class:`LogProgress`; nothing when ``enabled`` is False."""
    if enabled and not _is_terminal(sys.stderr):
        return LogProgress(total, desc, unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=leave)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _interval() -> float:
    text = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(text) if text else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value >= 0 else DEFAULT_INTERVAL


def _duration(seconds: float) -> str:  # 42s, 3m05s, 1h02m
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
