"""Headless Chromium for the site tests: the Debian ``chromium`` driven by Playwright, nothing downloaded.

scripts/test.sh installs the ``chromium`` package when it is missing and it can (as root, with apt-get); the
tests skip, naming the reason, only when there is still no browser, and fail instead under CI (``CI=true``),
where the browser must be there. The browser starts offline-quiet with a fresh profile in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1400, "height": 900}


def chromium_path() -> str:
    """The system Chromium; skips (or fails under CI) when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "no chromium on PATH; scripts/test.sh installs the Debian package chromium when run as root"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Console:
    """What a page reported: console messages of type error, uncaught exceptions, dialogs it opened."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextmanager
def chromium_page(profile: Path) -> Iterator[tuple[Any, Console]]:
    """A page of a fresh headless Chromium (profile in ``profile``), and what it reports."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    executable = chromium_path()
    console = Console()
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,
            offline=True,
        )
        try:
            page = context.new_page()
            page.on("console", lambda message: message.type == "error" and console.errors.append(message.text))
            page.on("pageerror", lambda error: console.errors.append(str(error)))
            page.on("dialog", lambda dialog: (console.dialogs.append(dialog.message), dialog.dismiss()))
            yield page, console
        finally:
            context.close()


def open_file(page: Any, path: Path) -> None:
    """Load a file of the site as a reader would: from disk."""
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
