"""Worker processes that end with the process that started them.

A process pool's own shutdown needs a live parent; a killed one (``kill -9``, the out-of-memory killer) would
leave its workers, each holding its copy of the data and any loaded network, running until killed by hand.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when ``parent`` dies, however it dies (``kill -9`` included).

    On Linux the kernel delivers SIGKILL when the parent goes (``PR_SET_PDEATHSIG``); elsewhere a daemon thread
    polls the parent's pid once a second.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0 and os.getppid() == parent:
                return
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before this worker got here
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="die-with-parent").start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
