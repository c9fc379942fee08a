"""Where independent units of work run: in this process, in local worker processes, or on a Ray cluster.

``generate-sets`` (chunks of a set) and ``score`` (forward passes and attacks) both hand an executor a function
and a list of picklable units; :meth:`Executor.map_unordered` yields ``(unit, result)`` pairs as units finish.
The caller places each result by its unit (set rows by index, logits by set hash) and writes every file itself,
so the output does not depend on the executor, the worker count or the completion order. ``fn`` is a module-level
function (workers import it by name) and reads its inputs by path.

An engine is one module with one class: ``map_unordered`` plus the context-manager methods (connect, release),
an :class:`ExecutorKind` value and a branch in :func:`open_executor`; :mod:`libkd_bench.core.ray_executor` is
the example (a batch scheduler such as SLURM would be another).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import enum
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from libkd_bench.core.errors import BenchError

Unit = TypeVar("Unit")
Result = TypeVar("Result")

RAY_INSTALL_HINT = "--executor ray needs Ray, an optional extra: pip install 'libkd-bench[ray]'"


class ExecutorKind(str, enum.Enum):
    LOCAL = "local"
    RAY = "ray"


@dataclass(frozen=True)
class Resources:
    """What one unit needs on a worker; schedulers that place tasks (Ray) reserve it, local ones ignore it.

    Attributes:
        cpus: CPU cores per unit.
        gpus: GPUs per unit (0: CPU work); an engine without GPUs runs the unit on CPU.
    """

    cpus: float = 1.0
    gpus: float = 0.0


class Executor(Protocol):
    def map_unordered(
        self, fn: Callable[[Unit], Result], units: Sequence[Unit], resources: Resources | None = None
    ) -> Iterator[tuple[Unit, Result]]:
        """Run ``fn`` on every unit; yield ``(unit, result)`` as units finish. Closing the iterator early
        (an error in the caller, Ctrl-C) cancels the units still running."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc_info: object) -> None: ...


class LocalExecutor:
    """Units in this process (one worker, or one unit) or in spawned processes started once, on first use.

    Args:
        workers: worker processes; 1 runs everything in the calling process.
        initializer: run once, with ``initargs``, in every spawned worker process before its first unit.
        initargs: arguments of ``initializer``.
    """

    def __init__(
        self, workers: int = 1, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        if workers < 1:
            raise BenchError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.initializer, self.initargs = initializer, initargs
        self._pool: futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

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
                max_workers=self.workers, mp_context=context, initializer=self.initializer, initargs=self.initargs
            )
        pending = {self._pool.submit(fn, unit): unit for unit in units}
        try:
            for done in futures.as_completed(pending):
                yield pending[done], done.result()
        finally:
            for future in pending:
                future.cancel()


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
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


def open_executor(kind: ExecutorKind | str, workers: int | None = None, address: str | None = None) -> Executor:
    """The executor named ``kind``.

    Args:
        kind: ``local`` or ``ray``.
        workers: local worker processes (None: 1); for Ray, the CPUs of a Ray instance started on this
            machine (None: all of them). A cluster joined with ``address`` uses its own resources.
        address: the Ray cluster to join (``auto``, ``HOST:PORT``); None: ``$RAY_ADDRESS`` or a new local one.

    Raises:
        BenchError: an unknown kind, or ``ray`` when Ray is not installed (with the command that installs it).
    """
    try:
        kind = ExecutorKind(kind)
    except ValueError:
        raise BenchError(f"unknown --executor {kind!r}; choose local or ray") from None
    if address is not None and kind is not ExecutorKind.RAY:
        raise BenchError("--ray-address needs --executor ray")
    if kind is ExecutorKind.LOCAL:
        return LocalExecutor(workers or 1)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise BenchError(RAY_INSTALL_HINT) from None
    from libkd_bench.core.ray_executor import RayExecutor

    return RayExecutor(address=address, num_cpus=workers)


def cluster_executor(
    kind: ExecutorKind | str, workers: int | None = None, address: str | None = None
) -> Executor | None:
    """:func:`open_executor` for every kind but ``local``, for which it returns None: commands keep their own
    local path (``score`` in-process, ``generate-sets`` with its worker processes), exactly as before."""
    executor = open_executor(kind, workers, address)
    return None if isinstance(executor, LocalExecutor) else executor
