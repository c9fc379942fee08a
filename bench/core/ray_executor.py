"""The Ray executor: every unit is one Ray task, placed by Ray on any node of the cluster.

Ray is an optional extra and is imported only when this executor is used. Data flow, the same on one machine
and on a cluster: a unit carries paths to what it reads (the set store), so every worker must see the set
store at the same path (a shared filesystem, or the same files copied to each node); the result (a chunk of a
set, a logits array) comes back to the driver through Ray's object store, and the driver writes every file.
The results directory therefore need not be shared, and the atomic writes of a local run hold unchanged.

Faults: a worker process or node that dies is retried by Ray (``max_retries``); an exception raised by the unit
itself (bad input) is not retried and is re-raised in the driver as it was raised in the worker, so a
``BenchError`` is the usual one-line error. Leaving :meth:`RayExecutor.map_unordered` early (an error, Ctrl-C)
cancels the tasks still queued or running.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import Resources, Result, Unit

TASK_RETRIES = 3  # re-runs of a task whose worker died (not of one that raised)
FORWARDED_ENV_PREFIX = "LIBKD_BENCH_"  # e.g. LIBKD_BENCH_ZOO_DIR: workers resolve zoo names as the driver does
CANCEL_ROUNDS = 2
CANCEL_WAIT_SECONDS = 0.5
LOCAL_INSTANCE = "local"  # ray.init's name for a new instance here, even when a `ray start` one runs already
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "1"}


class RayExecutor:
    """Runs units as Ray tasks; connects to (or starts) Ray on entry and disconnects on exit.

    When Ray is already initialised in this process (a caller that manages its own cluster), that connection is
    used and left open.

    Args:
        address: cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); None: ``$RAY_ADDRESS`` when
            set, else a new Ray instance on this machine.
        num_cpus: CPUs of a new local instance (None: all); ignored when joining a cluster.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._owns_connection = False

    def __enter__(self) -> RayExecutor:
        import ray

        if ray.is_initialized():
            return self
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
        forwarded = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIX)}
        address = self.address or os.environ.get("RAY_ADDRESS") or LOCAL_INSTANCE
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
        if self._owns_connection:
            import ray

            ray.shutdown()
            self._owns_connection = False

    def map_unordered(
        self, fn: Callable[[Unit], Result], units: Sequence[Unit], resources: Resources | None = None
    ) -> Iterator[tuple[Unit, Result]]:
        import ray

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
            if pending:
                _cancel(list(pending))


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
    """The task's value; the unit's own exception re-raised as it was raised; a worker lost for good -> BenchError."""
    import ray
    from ray.exceptions import RayTaskError, WorkerCrashedError

    try:
        return ray.get(ref)
    except RayTaskError as error:
        cause = getattr(error, "cause", None)
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
