"""Where and how torch runs: the device choice and the CPU thread count.

Shared by the scoring engine, checkpoint loading and the neural set generators, so every part of the suite
resolves ``--device`` the same way and scopes thread settings the same way (set for a block, then restored).
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from libkd_bench.core.errors import BenchError

_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


class DeviceChoice(str, enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"
    AUTO = "auto"


def resolve_device(choice: DeviceChoice | str) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU is a one-line error."""
    try:
        choice = DeviceChoice(choice)
    except ValueError:
        raise BenchError(f"unknown --device {choice!r}; choose cpu, cuda or auto") from None
    if choice is DeviceChoice.AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice is DeviceChoice.CUDA and not torch.cuda.is_available():
        raise BenchError("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(choice.value)


def available_cpus() -> int:
    """CPUs this process can run on: its affinity mask, further capped by a cgroup v2 CPU quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    return max(1, count)


def thread_candidates(usable: int) -> list[int]:
    """Intra-op thread counts worth trying on CPU, most first: all usable CPUs, half of them, one."""
    return sorted({usable, max(1, usable // 2), 1}, reverse=True)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the duration (None: leave it as is); restores the old setting."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
