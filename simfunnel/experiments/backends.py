"""Where experiment runs execute: serially, on local processes, or on a Dask cluster.

One small interface: a backend is a context manager whose :meth:`Backend.map`
takes a picklable function and an iterable of tasks and yields ``(task, outcome)``
as each finishes, in whatever order. An outcome is :class:`Done` or :class:`Failed`;
a task that raises never stops the others. At most a few tasks per worker are in
flight at once, so memory stays flat however many tasks there are.

Seeds travel inside the tasks, so results never depend on which worker ran what.
"""

from __future__ import annotations

import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from simfunnel.errors import SimfunnelError

T = TypeVar("T")

BackendName = Literal["serial", "processes", "dask"]
BACKENDS: tuple[str, ...] = ("serial", "processes", "dask")
#: Environment variable naming a Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
SCHEDULER_ENV = "SIMFUNNEL_DASK_SCHEDULER"


@dataclass(frozen=True)
class Done:
    """A task's return value."""

    value: Any


@dataclass(frozen=True)
class Failed:
    """A task raised: its exception type and message, in one line."""

    error: str


Outcome = Done | Failed


def _guarded(fn: Callable[[Any], Any], task: Any) -> Outcome:
    try:
        return Done(fn(task))
    except Exception as exc:  # a failing run is recorded, not fatal
        message = str(exc).strip().splitlines()
        text = message[0] if message else ""
        origin = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" ({origin[0].filename.rsplit('/', 1)[-1]}:{origin[0].lineno})" if origin else ""
        return Failed(f"{type(exc).__name__}: {text}{where}")


class Backend(Generic[T]):
    """Base class: run tasks and yield their outcomes as they finish."""

    name = "base"
    workers = 1

    def __enter__(self) -> Backend[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release workers."""

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[T]) -> Iterator[tuple[T, Outcome]]:
        """Yield ``(task, outcome)`` for every task, as each finishes."""
        raise NotImplementedError


class SerialBackend(Backend[T]):
    """In this process, one task after another: for debugging."""

    name = "serial"

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[T]) -> Iterator[tuple[T, Outcome]]:
        """Yield ``(task, outcome)`` for every task, in order."""
        for task in tasks:
            yield task, _guarded(fn, task)


class _FutureBackend(Backend[T]):
    """Shared bounded-submission loop of the pool backends."""

    in_flight_per_worker = 3

    def _submit(self, fn: Callable[[Any], Any], task: T) -> Any:
        raise NotImplementedError

    def _wait_any(self, futures: set[Any]) -> set[Any]:
        raise NotImplementedError

    def _result(self, future: Any) -> Outcome:
        # _guarded already turned the task's own errors into Failed: what is left is
        # the worker itself dying, or being lost by the cluster.
        try:
            outcome: Outcome = future.result()
            return outcome
        except Exception as exc:
            return Failed(f"{type(exc).__name__}: {exc}")

    def _cancel(self, futures: set[Any]) -> None:
        for future in futures:
            future.cancel()

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[T]) -> Iterator[tuple[T, Outcome]]:
        """Yield ``(task, outcome)`` for every task, as each finishes."""
        limit = max(1, self.workers * self.in_flight_per_worker)
        pending: dict[Any, T] = {}
        source = iter(tasks)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        task = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[self._submit(fn, task)] = task
                if not pending:
                    return
                for future in self._wait_any(set(pending)):
                    yield pending.pop(future), self._result(future)
        finally:
            if pending:
                self._cancel(set(pending))


def _ignore_interrupts() -> None:
    """A worker's initializer: Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessBackend(_FutureBackend[T]):
    """All local cores, through a pool of worker processes (the default).

    The workers ignore Ctrl-C, as the Dask backend's do: the terminal sends it to
    the whole process group, and this process alone records the interruption and
    stops them, so Ctrl-C prints one line rather than a traceback from every worker.
    """

    name = "processes"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        # The platform's default start method: fork on Linux (no re-import of the
        # caller's script, so scripts without a __main__ guard work), spawn elsewhere.
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=get_context(), initializer=_ignore_interrupts
        )

    def _submit(self, fn: Callable[[Any], Any], task: T) -> Future[Outcome]:
        # Workers start on demand, inside submit: they are forked with Ctrl-C
        # ignored, so one arriving before their initializer runs stays silent too.
        if threading.current_thread() is not threading.main_thread():
            return self._pool.submit(_guarded, fn, task)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return self._pool.submit(_guarded, fn, task)
        finally:
            signal.signal(signal.SIGINT, previous)

    def _wait_any(self, futures: set[Any]) -> set[Any]:
        done, _ = wait(futures, return_when=FIRST_COMPLETED)
        return set(done)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskBackend(_FutureBackend[T]):
    """A Dask distributed cluster: an existing one by address, or a LocalCluster.

    Parameters
    ----------
    scheduler
        ``tcp://host:8786``; default: the ``SIMFUNNEL_DASK_SCHEDULER`` environment
        variable, else a LocalCluster on this machine (loopback only).
    workers
        Worker processes of the LocalCluster (one thread each); ignored with an address.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None) -> None:
        import logging

        from distributed import Client, LocalCluster

        address = scheduler or os.environ.get(SCHEDULER_ENV) or None
        self._cluster: Any = None
        try:
            if address:
                self._client = Client(address, timeout="10s")
            else:
                # Worker processes ignore Ctrl-C (they inherit SIGINT ignored while
                # they start): this process alone handles it, records the interruption
                # and stops them, so Ctrl-C prints one line rather than a traceback
                # from every worker.
                main = threading.current_thread() is threading.main_thread()
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
                try:
                    self._cluster = LocalCluster(
                        n_workers=workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        silence_logs=logging.CRITICAL,
                    )
                finally:
                    if main:
                        signal.signal(signal.SIGINT, previous)
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as exc:
            raise SimfunnelError(f"cannot reach the Dask scheduler {address!r}: {exc}") from None
        info = self._client.scheduler_info()
        threads = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())
        self.workers = max(1, threads)
        self.address = self._client.scheduler.address

    def _submit(self, fn: Callable[[Any], Any], task: T) -> Any:
        return self._client.submit(_guarded, fn, task, pure=False)

    def _wait_any(self, futures: set[Any]) -> set[Any]:
        from distributed import wait as dask_wait

        done, _ = dask_wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done)

    def close(self) -> None:
        """Disconnect, and stop the LocalCluster if this backend started it."""
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_backend(
    name: str = "processes", workers: int | None = None, scheduler: str | None = None
) -> Backend[Any]:
    """A backend by name: ``serial``, ``processes`` (default) or ``dask``."""
    if workers is not None and workers < 1:
        raise SimfunnelError(f"workers: must be >= 1, got {workers}")
    if name == "serial":
        return SerialBackend()
    if name == "processes":
        return ProcessBackend(workers)
    if name == "dask":
        return DaskBackend(scheduler, workers)
    raise SimfunnelError(f"backend: must be one of {', '.join(BACKENDS)}, got {name!r}")
