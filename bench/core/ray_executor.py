"""The Ray executor: every unit is one Ray task, placed by Ray on any node of the cluster.

Ray is an optional extra and is imported only when this executor is used. Data flow, the same on one machine
and on a cluster: the result of a unit (a chunk of a set, a logits array) comes back to the driver through
Ray's object store, and the driver writes every file, so the results directory need not be shared and the
atomic writes of a local run hold unchanged. What units read (the clean split, a set's images, a model) reaches
them one of two ways (:class:`~libkd_bench.core.executor.DataMode`): workers read the driver's paths (a shared
filesystem), or the driver puts each input into the object store once and workers fetch it from there (once per
node). ``auto`` first sends one small task to every node to compare the files' sizes and first and last bytes
with the driver's, and ships when any node differs. A model is shipped whole, pickled with the code of a user's
architecture file, so workers need libkd-bench and its dependencies but none of the user's files.

Joining a cluster first opens a TCP connection to its address, so a wrong ``--ray-address`` fails in seconds
with one line instead of Ray's minutes of retries.

Faults: a worker process or node that dies is retried by Ray (``max_retries``); an exception raised by the unit
itself (bad input) is not retried and is re-raised in the driver as it was raised in the worker, so a
``BenchError`` is the usual one-line error. Leaving :meth:`RayExecutor.map_unordered` early (an error, Ctrl-C)
ends the tasks still queued or running: when this executor opened the Ray connection, by closing it (Ray ends a
departed driver's tasks and kills their workers; a Ray instance it started stops whole), otherwise by
cancelling them one by one. Cancelling many running tasks while others complete can crash the driver inside
Ray's core worker ("Tried to complete task that was not pending"), so it is kept to the caller-managed case.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import DataMode, Resources, Result, Unit, Value, WorkerInput

TASK_RETRIES = 3  # re-runs of a task whose worker died (not of one that raised)
FORWARDED_ENV_PREFIX = "LIBKD_BENCH_"  # e.g. LIBKD_BENCH_ZOO_DIR: workers resolve zoo names as the driver does
CANCEL_ROUNDS = 2
CANCEL_WAIT_SECONDS = 0.5
LOCAL_INSTANCE = "local"  # ray.init's name for a new instance here, even when a `ray start` one runs already
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "1"}
CONNECT_TIMEOUT_SECONDS = 5.0
PROBE_BYTES = 1 << 20  # compared at each end of a file by ``auto``


class RayExecutor:
    """Runs units as Ray tasks; connects to (or starts) Ray on entry and disconnects on exit.

    When Ray is already initialised in this process (a caller that manages its own cluster), that connection is
    used and left open.

    Args:
        address: cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); None: ``$RAY_ADDRESS`` when
            set, else a new Ray instance on this machine.
        num_cpus: CPUs of a new local instance (None: all); ignored when joining a cluster.
        data: how workers get what units read (see the module docstring).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, data: DataMode = DataMode.AUTO) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.data = data
        self._owns_connection = False
        self._closed = False  # its own connection was closed: not to be reopened behind the caller's back
        self._shipped: list[Any] = []  # object refs of shipped inputs, alive while units may fetch them

    def __enter__(self) -> RayExecutor:
        import ray

        if ray.is_initialized():
            return self
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
        forwarded = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIX)}
        address = self.address or os.environ.get("RAY_ADDRESS") or LOCAL_INSTANCE
        if address != LOCAL_INSTANCE:
            _check_reachable(address)
        try:
            ray.init(
                address=address,
                num_cpus=self.num_cpus if address == LOCAL_INSTANCE else None,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                runtime_env={"env_vars": forwarded} if forwarded else None,
            )
        except ConnectionError as error:
            raise BenchError(f"cannot reach the Ray cluster at {address}: {error}") from None
        self._owns_connection = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._disconnect()

    def _disconnect(self) -> None:
        """Release the shipped inputs and close the connection this executor opened (nothing else)."""
        self._shipped.clear()
        if self._owns_connection:
            import ray

            ray.shutdown()
            self._owns_connection = False
            self._closed = True

    def provide(self, inputs: Sequence[WorkerInput[Value]]) -> list[Callable[[], Value]]:
        """The driver's paths when workers see them (``shared``, or ``auto`` after the check), else shipped inputs."""
        mode = self.data
        if mode is DataMode.AUTO:
            files = sorted({path for item in inputs for path in item.files})
            mode = DataMode.SHARED if _every_node_sees(files) else DataMode.SHIP
        if mode is DataMode.SHARED:
            return [item.load for item in inputs]
        return [self._ship(item) for item in inputs]

    def _ship(self, item: WorkerInput[Value]) -> Callable[[], Value]:
        import ray
        from ray import cloudpickle

        for name in item.code:
            cloudpickle.register_pickle_by_value(sys.modules[name])
        ref = ray.put((item.value or item.load)())
        self._shipped.append(ref)
        return Shipped(ref)

    def map_unordered(
        self, fn: Callable[[Unit], Result], units: Sequence[Unit], resources: Resources | None = None
    ) -> Iterator[tuple[Unit, Result]]:
        import ray

        if self._closed:
            raise RuntimeError("this RayExecutor's connection was closed; open a new one")
        resources = resources or Resources()
        task = ray.remote(
            num_cpus=resources.cpus,
            num_gpus=resources.gpus if resources.gpus and _cluster_gpus() > 0 else 0,
            max_retries=TASK_RETRIES,
            retry_exceptions=False,
        )(fn)
        pending: dict[Any, Unit] = {task.remote(unit): unit for unit in units}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    unit = pending.pop(ref)
                    yield unit, _result(ref)
        finally:
            if pending and self._owns_connection:
                self._disconnect()
            elif pending:
                _cancel(list(pending))


@dataclass(frozen=True)
class Shipped:
    """An input the driver put into Ray's object store; calling it on a worker fetches it (arrays without a copy)."""

    ref: Any

    def __call__(self) -> Any:
        import ray

        return ray.get(self.ref)


def _check_reachable(address: str) -> None:
    """Fail fast, in one line, when nothing answers at the cluster's address (Ray would retry for minutes)."""
    if address.startswith("ray://"):
        target = address.removeprefix("ray://")
    else:
        try:
            from ray._private.services import canonicalize_bootstrap_address_or_die
        except ImportError:  # another Ray layout: leave the check to ray.init
            return
        try:
            target = canonicalize_bootstrap_address_or_die(address)
        except (ConnectionError, ValueError) as error:
            raise BenchError(f"no Ray cluster at --ray-address {address}: {error}") from None
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise BenchError(
            f"cannot reach the Ray cluster at {address} ({target}: {reason}); "
            "start one with `ray start --head` or correct --ray-address"
        ) from None


def file_fingerprint(path: Path) -> tuple[int, str] | None:
    """Size and sha256 of the first and last ``PROBE_BYTES`` of a file; None when it cannot be read."""
    try:
        size = path.stat().st_size
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            digest.update(handle.read(PROBE_BYTES))
            if size > PROBE_BYTES:
                handle.seek(max(PROBE_BYTES, size - PROBE_BYTES))
                digest.update(handle.read(PROBE_BYTES))
    except OSError:
        return None
    return size, digest.hexdigest()


def differing_files(expected: dict[str, tuple[int, str]]) -> list[str]:
    """The files whose fingerprint here differs from ``expected`` (runs on each node)."""
    return [path for path, fingerprint in expected.items() if file_fingerprint(Path(path)) != tuple(fingerprint)]


def _every_node_sees(files: Sequence[Path]) -> bool:
    """Whether every alive node of the cluster has ``files`` at the same paths, as the driver sees them."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    expected = {}
    for path in files:
        fingerprint = file_fingerprint(path)
        if fingerprint is None:  # the driver itself cannot read it: only shipping can help
            return False
        expected[str(path)] = fingerprint
    probe = ray.remote(num_cpus=0, max_retries=TASK_RETRIES)(differing_files)
    refs = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(expected)
        for node in ray.nodes()
        if node.get("Alive")
    ]
    return not any(ray.get(refs))


def _cancel(refs: list[Any]) -> None:
    """Cancel tasks (queued ones dropped, running ones' workers killed) and wait until they have ended.

    A cancel that reaches a task while it is being handed to a worker can be lost, and the task would then run
    to its end; so the tasks still unfinished after a short wait are cancelled again.
    """
    import ray

    for round in range(CANCEL_ROUNDS):
        if round:
            time.sleep(CANCEL_WAIT_SECONDS)
        for ref in refs:
            ray.cancel(ref, force=True)


def _result(ref: Any) -> Any:
    """The task's value; the unit's own exception re-raised as it was raised, except a missing file or module (a
    node set up unlike the driver) and a worker lost for good, which are one-line errors naming the fix."""
    import ray
    from ray.exceptions import RayTaskError, WorkerCrashedError

    try:
        return ray.get(ref)
    except RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, FileNotFoundError):
            raise BenchError(
                f"a Ray worker cannot read {cause.filename}: its node does not see the driver's files; "
                "use --ray-data ship"
            ) from None
        if isinstance(cause, ImportError):
            raise BenchError(
                f"a Ray worker cannot import {cause.name or cause}: install libkd-bench on every node, and ship "
                "a user's architecture code with --ray-data ship"
            ) from None
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    except WorkerCrashedError:
        raise BenchError(
            f"a Ray worker died {TASK_RETRIES + 1} times running one unit (out of memory? see the Ray logs)"
        ) from None


def _cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0))
