"""Where independent units of work run: in this process, in local worker processes, or on a Ray cluster.

``generate-sets`` (chunks of a set) and ``score`` (forward passes and attacks) both hand an executor a function
and a list of picklable units; :meth:`Executor.map_unordered` yields ``(unit, result)`` pairs as units finish.
The caller places each result by its unit (set rows by index, logits by set hash) and writes every file itself,
so the output does not depend on the executor, the worker count or the completion order. ``fn`` is a module-level
function (workers import it by name).

What units read (a set's images, a model) reaches workers through :meth:`Executor.provide`: a unit carries a
picklable callable that returns the input on the worker. Local workers read the driver's files; a Ray cluster
either does the same (a shared filesystem) or gets each input once from the driver through its object store
(``--ray-data``), so a cluster needs no shared filesystem.

An engine is one module with one class: ``map_unordered`` and ``provide`` plus the context-manager methods
(connect, release), an :class:`ExecutorKind` value and a branch in :func:`open_executor`;
:mod:`libkd_bench.core.ray_executor` is the example (a batch scheduler such as SLURM would be another).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import enum
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np

from libkd_bench.core.errors import BenchError
from libkd_bench.core.worker_processes import die_with_parent

Unit = TypeVar("Unit")
Result = TypeVar("Result")
Value = TypeVar("Value")

RAY_INSTALL_HINT = "--executor ray needs Ray, an optional extra: pip install 'libkd-bench[ray]'"


class ExecutorKind(str, enum.Enum):
    LOCAL = "local"
    RAY = "ray"


class DataMode(str, enum.Enum):
    """How a cluster's workers get what units read (``--ray-data``).

    ``shared``: from the driver's paths (a shared filesystem, or the same files on every node); ``ship``: sent
    once by the driver through the engine's object store; ``auto``: ``shared`` when every node sees the files
    the driver reads (same size and same first and last bytes), else ``ship``.
    """

    AUTO = "auto"
    SHARED = "shared"
    SHIP = "ship"


@dataclass(frozen=True)
class WorkerInput(Generic[Value]):
    """Something units read (a set's images, a model), and the two ways a worker can get it.

    Attributes:
        load: reads it from ``files`` at the driver's paths; runs on a worker, so it must pickle (a module-level
            function or a ``functools.partial`` of one) and use absolute paths.
        files: the files ``load`` reads; an engine checks that its workers see them before relying on ``load``.
        value: makes it on the driver, to send it to the workers instead (None: ``load``, run on the driver).
        code: modules the value's classes come from that workers cannot import by name (a user's architecture
            file); they travel with the value.
    """

    load: Callable[[], Value]
    files: tuple[Path, ...]
    value: Callable[[], Value] | None = None
    code: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resources:
    """What one unit needs on a worker; schedulers that place tasks (Ray) reserve it, local ones ignore it.

    Attributes:
        cpus: CPU cores per unit.
        gpus: GPUs per unit (0: CPU work); an engine without GPUs runs the unit on CPU.
    """

    cpus: float = 1.0
    gpus: float = 0.0


def array_file(path: Path, *related: Path) -> WorkerInput[np.ndarray]:
    """An ``.npy`` file units read: memory-mapped from the driver's path, or read whole to be shipped.

    Args:
        path: the array file (absolute).
        related: files that must match too for the path to be trusted (e.g. the set's manifest).
    """
    return WorkerInput(
        load=functools.partial(np.load, path, mmap_mode="r"),
        files=(path, *related),
        value=functools.partial(np.load, path),
    )


class Executor(Protocol):
    def map_unordered(
        self, fn: Callable[[Unit], Result], units: Sequence[Unit], resources: Resources | None = None
    ) -> Iterator[tuple[Unit, Result]]:
        """Run ``fn`` on every unit; yield ``(unit, result)`` as units finish. Closing the iterator early
        (an error in the caller, Ctrl-C) cancels the units still running."""
        ...

    def provide(self, inputs: Sequence[WorkerInput[Value]]) -> list[Callable[[], Value]]:
        """For each input, a picklable callable for units to carry: on a worker, it returns the input."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc_info: object) -> None: ...


class LocalExecutor:
    """Units in this process (one worker, or one unit) or in spawned processes started once, on first use, each
    of which ends when this process dies (:func:`~libkd_bench.core.worker_processes.die_with_parent`).

    Args:
        workers: worker processes; 1 runs everything in the calling process.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise BenchError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool: futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def provide(self, inputs: Sequence[WorkerInput[Value]]) -> list[Callable[[], Value]]:
        """Local workers read the driver's own files."""
        return [item.load for item in inputs]

    def map_unordered(
        self, fn: Callable[[Unit], Result], units: Sequence[Unit], resources: Resources | None = None
    ) -> Iterator[tuple[Unit, Result]]:
        if self.workers == 1 or len(units) <= 1:
            for unit in units:
                yield unit, fn(unit)
            return
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
            )
        pending = {self._pool.submit(fn, unit): unit for unit in units}
        try:
            for done in futures.as_completed(pending):
                yield pending[done], done.result()
        finally:
            for future in pending:
                future.cancel()


def add_executor_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--executor`` and ``--ray-address`` (nothing is imported: ``--help`` stays instant)."""
    parser.add_argument(
        "--executor",
        choices=[kind.value for kind in ExecutorKind],
        default=ExecutorKind.LOCAL.value,
        help="where the work runs: local (default) or ray (a Ray cluster; pip install 'libkd-bench[ray]')",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join, e.g. auto or HOST:6379 (default: $RAY_ADDRESS, else a Ray instance on this machine)",
    )
    parser.add_argument(
        "--ray-data",
        choices=[mode.value for mode in DataMode],
        help="how Ray workers get sets and models: shared (read the driver's paths), ship (sent by this process "
        "through Ray's object store: no shared filesystem needed) or auto (default: shared when every node "
        "sees the files, else ship)",
    )


def open_executor(
    kind: ExecutorKind | str, workers: int | None = None, address: str | None = None, data: DataMode | str | None = None
) -> Executor:
    """The executor named ``kind``.

    Args:
        kind: ``local`` or ``ray``.
        workers: local worker processes (None: 1); for Ray, the CPUs of a Ray instance started on this
            machine (None: all of them). A cluster joined with ``address`` uses its own resources.
        address: the Ray cluster to join (``auto``, ``HOST:PORT``); None: ``$RAY_ADDRESS`` or a new local one.
        data: how Ray workers get their inputs (None: ``auto``).

    Raises:
        BenchError: an unknown kind, or ``ray`` when Ray is not installed (with the command that installs it).
    """
    try:
        kind = ExecutorKind(kind)
    except ValueError:
        raise BenchError(f"unknown --executor {kind!r}; choose local or ray") from None
    if kind is not ExecutorKind.RAY:
        for flag, value in (("--ray-address", address), ("--ray-data", data)):
            if value is not None:
                raise BenchError(f"{flag} needs --executor ray")
    if kind is ExecutorKind.LOCAL:
        return LocalExecutor(workers or 1)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise BenchError(RAY_INSTALL_HINT) from None
    from libkd_bench.core.ray_executor import RayExecutor

    return RayExecutor(address=address, num_cpus=workers, data=DataMode(data or DataMode.AUTO))


@dataclass(frozen=True)
class ExecutorChoice:
    """Where a command's work runs, as ``--executor``, ``--workers``, ``--ray-address`` and ``--ray-data`` say
    (see :func:`open_executor`)."""

    kind: ExecutorKind | str = ExecutorKind.LOCAL
    workers: int | None = None
    address: str | None = None
    data: DataMode | str | None = None

    def open(self) -> Executor:
        return open_executor(self.kind, self.workers, self.address, self.data)


def cluster_executor(
    kind: ExecutorKind | str, workers: int | None = None, address: str | None = None, data: DataMode | str | None = None
) -> Executor | None:
    """:func:`open_executor` for every kind but ``local``, for which it returns None: commands keep their own
    local path (``score`` in-process, ``generate-sets`` with its worker processes), exactly as before."""
    executor = open_executor(kind, workers, address, data)
    return None if isinstance(executor, LocalExecutor) else executor
