"""One writer thread owns the store's write connection; requests enqueue work and wait.

DuckDB allows one writing connection per file and a connection must not run two
statements at once, so every write of ``toolctl serve`` goes through ``WriteQueue``: a
request submits a job (a function of the store) and awaits its future, which resolves
only after the job's transaction committed. A 2xx answer therefore always means "on
disk": ``kill -9`` after it loses nothing.

The queue is bounded by items and by bytes (the bodies a job holds). ``submit`` refuses
work past either bound with ``QueueFullError`` instead of growing memory; the server
answers 503 with ``Retry-After``. A job counts against the bounds until it finished,
because its memory is held until then.

Group commit: the writer takes everything queued as one burst and runs it inside one
transaction (``Store.transaction()`` is re-entrant, so each job's own writes join it),
then resolves every job's future after that single commit. Jobs of the same kind can go
further and be written as one (a ``run`` with ``merge_key`` and ``run_many``: all span
requests of a burst from one source become one insert, one batch and one ledger entry). Per-request accounting stays
exact because each job computes its own counts. If any job of a burst fails, the whole
transaction rolls back and the jobs are replayed one transaction each, so one bad
request never costs the others their write — and nothing was acknowledged before.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from toolctl.errors import ToolctlError


class QueueFullError(ToolctlError):
    """The write queue is at its item or byte bound; the caller should retry later."""

    code = "queue_full"


class QueueClosedError(ToolctlError):
    """The collector is shutting down and takes no more writes."""

    code = "queue_closed"


@dataclass
class Job:
    """Work for the writer: ``run(store)`` returns the request's result."""

    run: Callable[[Any], Any]
    nbytes: int
    future: Future = field(default_factory=Future)


class WriteQueue:
    """A bounded queue in front of one writer thread that owns ``store``."""

    def __init__(self, store: Any, *, max_items: int = 1024, max_bytes: int = 256 * 1024 * 1024):
        if max_items < 1 or max_bytes < 1:
            raise ValueError("queue bounds must be positive")
        self.store = store
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._items = 0  # queued + running
        self._bytes = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="toolctl-writer", daemon=True)
        self.committed_jobs = 0
        self.group_commits = 0  # transactions that committed more than one job
        #: Called in the writer thread after each commit: on_commit(seconds, start_ns, jobs).
        self.on_commit: Callable[[float, int, list[Job]], None] | None = None
        self.merged_jobs = 0  # jobs written together with others of the same merge_key

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish everything queued, and stop the writer thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- use -------------------------------------------------------------------------------
    def depth(self) -> tuple[int, int]:
        """(items, bytes) queued or being written."""
        with self._cond:
            return self._items, self._bytes

    def submit(self, run: Callable[[Any], Any], nbytes: int) -> Future:
        """Enqueue ``run(store)``; the future resolves after it committed (or raised).

        Raises QueueFullError when the queue is at a bound (nothing was enqueued),
        QueueClosedError after ``close``. A single job larger than ``max_bytes`` is
        admitted only into an empty queue, so it can never be starved forever.
        """
        job = Job(run, nbytes)
        with self._cond:
            if self._closed:
                raise QueueClosedError("the collector is shutting down", hint="retry against the next instance")
            over_items = self._items + 1 > self.max_items
            over_bytes = self._items > 0 and self._bytes + nbytes > self.max_bytes
            if over_items or over_bytes:
                raise QueueFullError(
                    f"write queue is full ({self._items} requests, {self._bytes} bytes pending)",
                    hint="retry after the Retry-After delay",
                )
            self._items += 1
            self._bytes += nbytes
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    # -- the writer thread -----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs and self._closed:
                    return
                burst = list(self._jobs)
                self._jobs.clear()
            self._run_burst(burst)

    def _run_burst(self, burst: list[Job]) -> None:
        live = []
        for job in burst:
            if job.future.set_running_or_notify_cancel():
                live.append(job)
            else:
                self._release(job)
        # Jobs that commit their own transactions (lake export/compaction) never join a burst.
        alone = [job for job in live if getattr(job.run, "toolctl_alone", False)]
        self._run_group([job for job in live if not getattr(job.run, "toolctl_alone", False)])
        for job in alone:
            self._run(job, started=True)

    def _run_group(self, live: list[Job]) -> None:
        if len(live) == 1:
            self._run(live[0], started=True)
            return
        if not live:
            return
        t0, start_ns = time.perf_counter(), time.time_ns()
        try:
            with self.store.transaction():
                results = self._run_merged(live)
        except BaseException:
            # Rolled back as a whole: replay each alone so only the failing one fails.
            for job in live:
                self._run(job, started=True)
            return
        if self.on_commit is not None:  # before answering: a scrape after the answer sees it
            self.on_commit(time.perf_counter() - t0, start_ns, live)
        self.group_commits += 1
        for job, result in zip(live, results):
            self._release(job)
            self.committed_jobs += 1
            job.future.set_result(result)

    def _run_merged(self, live: list[Job]) -> list[Any]:
        """Run a burst inside the open transaction. Jobs whose ``run`` has a ``merge_key``
        (and a ``run_many(store, runs) -> results``) are run together, one call per key:
        e.g. every span request of the burst becomes one insert and one ledger entry."""
        results: list[Any] = [None] * len(live)
        groups: dict[Any, list[int]] = {}
        order: list[list[int]] = []
        for i, job in enumerate(live):
            key = getattr(job.run, "merge_key", None)
            if key is None:
                order.append([i])
            elif key in groups:
                groups[key].append(i)
            else:
                groups[key] = [i]
                order.append(groups[key])
        for idxs in order:
            if len(idxs) == 1:
                results[idxs[0]] = live[idxs[0]].run(self.store)
                continue
            runs = [live[i].run for i in idxs]
            for i, result in zip(idxs, runs[0].run_many(self.store, runs), strict=True):
                results[i] = result
            self.merged_jobs += len(idxs)
        return results

    def _run(self, job: Job, *, started: bool = False) -> None:
        if not started and not job.future.set_running_or_notify_cancel():
            self._release(job)
            return
        t0, start_ns = time.perf_counter(), time.time_ns()
        try:
            result = job.run(self.store)
        except BaseException as exc:  # the caller gets the error; the writer keeps going
            self._release(job)
            job.future.set_exception(exc)
        else:
            if self.on_commit is not None:
                self.on_commit(time.perf_counter() - t0, start_ns, [job])
            self._release(job)
            self.committed_jobs += 1
            job.future.set_result(result)

    def _release(self, job: Job) -> None:
        with self._cond:
            self._items -= 1
            self._bytes -= job.nbytes
