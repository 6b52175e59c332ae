"""Where the batch grader's tasks run: a local process pool, or a Dask cluster.

One code path: the coordinator (:mod:`course_lib.grading.batch`) submits one task per submission
to a :class:`concurrent.futures.Executor` and stays the only writer of the gradebook. The
executor is

* a local :class:`~concurrent.futures.ProcessPoolExecutor`, one worker per core, by default:
  nothing beyond the course's own dependencies is needed. Its workers are forked from a
  ``forkserver`` that imported the grading modules once (:data:`WORKER_MODULES`; nbgrader and
  its dependencies take ~2 CPU-s to import, which ``spawn`` paid again in every worker), and
  that never saw the coordinator's gradebook connection or the class's submissions;
* a Dask cluster's executor (``distributed.Client(address).get_executor()``) when a scheduler
  address is given: ``make grade A=ps2_initializers SCHEDULER=tcp://host:8786`` or
  ``DASK_SCHEDULER_ADDRESS``. Needs the optional extra ``pip install -e '.[cluster]'`` on the
  coordinator and on every worker (``dev`` includes it).

:func:`run_tasks` retries what fails for the infrastructure's sake (a worker process or machine
lost, a broken pool, a lost connection) a bounded number of times. A student's crash or timeout
is not an exception: the per-submission function returns it as a result, so it is never retried.
On Dask a lost worker costs only the tasks it was running: the scheduler gives them to another
worker; the local pool, which breaks as a whole when one of its processes dies, is rebuilt and
the unfinished tasks are submitted again.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Backend", "open_backend", "run_tasks", "scheduler_address"]

DEFAULT_RETRIES = 3
"""Attempts after the first for a task that failed for an infrastructure reason."""

WORKER_MODULES = (
    "course_lib.grading.batch",
    "course_lib.grading.nbgrader_ext",
    "course_lib.grading.runner",
    "nbgrader.preprocessors",
    "nbgrader.converters",
)
"""What the local pool's forkserver imports once, before it forks the workers."""


def _stop_forkserver() -> None:
    """Stop this process's forkserver, if one runs, and reap it.

    The workers are its children: stopping it waits for it, so their CPU time is accounted to
    this process (``getrusage(RUSAGE_CHILDREN)``, ``time``) and no process outlives the run.
    """
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # CPython's (3.8+) own stop
    if stop is not None:
        stop()


def scheduler_address(explicit: str | None = None) -> str | None:
    """The Dask scheduler to use: ``explicit``, else ``$DASK_SCHEDULER_ADDRESS``, else None."""
    address = explicit or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    return address.strip() if address else None


@dataclass
class Backend:
    """An executor plus what the coordinator needs around it."""

    description: str
    kind: str
    workers: int
    _make: Callable[[], cf.Executor]
    _put: Callable[[Any], Any] = field(default=lambda obj: obj)
    _close: Callable[[], None] = field(default=lambda: None)
    executor: cf.Executor | None = None
    generation: int = 0

    def __post_init__(self) -> None:
        self.executor = self._make()

    def put(self, obj: Any) -> Any:
        """Make ``obj`` available to every task once (Dask: scattered to all workers)."""
        return self._put(obj)

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Submit one task; a local pool broken by a lost process is rebuilt first."""
        assert self.executor is not None
        try:
            return self.executor.submit(fn, *args)
        except cf.process.BrokenProcessPool:
            self.renew()
            return self.executor.submit(fn, *args)

    def renew(self) -> None:
        """Replace a broken local pool (Dask replaces lost workers itself)."""
        if self.kind != "local":
            return
        assert self.executor is not None
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._make()
        self.generation += 1

    def abort(self) -> None:
        """Stop now (Ctrl-C): cancel what has not started; local workers are terminated."""
        if self.executor is not None:
            if self.kind == "local":
                procs = list(getattr(self.executor, "_processes", {}).values())
                self.executor.shutdown(wait=False, cancel_futures=True)
                for proc in procs:  # their sandboxes die with them (bwrap --die-with-parent)
                    proc.terminate()
                _stop_forkserver()
            else:
                self.executor.shutdown(wait=False)
            self.executor = None
        self._close()
        self._close = lambda: None

    def close(self) -> None:
        if self.executor is not None:
            if self.kind == "local":
                self.executor.shutdown(wait=True, cancel_futures=True)
                _stop_forkserver()
            else:
                self.executor.shutdown(wait=True)
            self.executor = None
        self._close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _local(jobs: int | None) -> Backend:
    n = jobs or os.cpu_count() or 1
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_MODULES))
    return Backend(
        description=f"a local process pool of {n} worker{'s' if n != 1 else ''}",
        kind="local",
        workers=n,
        _make=lambda: cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx),
    )


def _dask(address: str, timeout: float) -> Backend:
    try:
        import distributed
    except ImportError:
        raise RuntimeError(
            "grading on a Dask cluster needs the optional extra: pip install -e '.[cluster]' "
            "(on the coordinator and on every worker)"
        ) from None
    try:
        client: Any = getattr(distributed, "Client")(address, timeout=timeout)  # noqa: B009
    except OSError as exc:
        raise RuntimeError(
            f"cannot reach the Dask scheduler at {address} ({exc}); is `dask scheduler` "
            "running there, and the address the one it printed?"
        ) from None
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    if not workers:
        client.close()
        raise RuntimeError(f"the Dask scheduler at {address} has no workers")
    return Backend(
        description=(
            f"the Dask cluster at {address} ({len(workers)} worker"
            f"{'s' if len(workers) != 1 else ''}, {threads} thread{'s' if threads != 1 else ''})"
        ),
        kind="dask",
        workers=threads,
        _make=lambda: client.get_executor(pure=False),
        _put=lambda obj: client.scatter(obj, broadcast=True, hash=False),
        _close=client.close,
    )


def open_backend(
    scheduler: str | None = None, *, jobs: int | None = None, timeout: float = 30.0
) -> Backend:
    """The local pool (``jobs`` workers), or the Dask cluster at ``scheduler`` / the env."""
    address = scheduler_address(scheduler)
    return _dask(address, timeout) if address else _local(jobs)


def run_tasks(
    backend: Backend,
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Hashable, tuple[Any, ...]]],
    on_result: Callable[[Hashable, Any], None],
    on_failure: Callable[[Hashable, BaseException], None],
    *,
    retries: int = DEFAULT_RETRIES,
    window: int | None = None,
) -> dict[Hashable, int]:
    """Run ``fn(*args)`` for every ``(key, args)``; results come back in completion order.

    ``on_result(key, value)`` runs in this process for each success (the coordinator writes the
    gradebook there); a task whose call raised is submitted again up to ``retries`` times, then
    ``on_failure(key, exc)``. At most ``window`` tasks are in flight (default: 4 per worker),
    so a class of thousands never sits in memory as pending futures. Returns the attempts used
    per key.
    """
    window = window or max(4, 4 * backend.workers)
    queue = list(tasks)[::-1]
    attempts: dict[Hashable, int] = {}
    live: dict[cf.Future[Any], tuple[Hashable, tuple[Any, ...], int]] = {}

    def launch(key: Hashable, args: tuple[Any, ...]) -> None:
        attempts[key] = attempts.get(key, 0) + 1
        live[backend.submit(fn, *args)] = (key, args, backend.generation)

    while queue or live:
        while queue and len(live) < window:
            launch(*queue.pop())
        done, _ = cf.wait(list(live), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            key, args, generation = live.pop(fut)
            try:
                value = fut.result()
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                if isinstance(exc, cf.process.BrokenProcessPool):
                    # The whole local pool is gone (its other tasks fail the same way and are
                    # requeued as they come in): one new pool per broken one.
                    if generation == backend.generation:
                        backend.renew()
                if attempts[key] <= retries:
                    queue.append((key, args))
                else:
                    on_failure(key, exc)
                continue
            on_result(key, value)
    return attempts
