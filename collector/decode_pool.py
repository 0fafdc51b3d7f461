"""The request stage of ``/v1/traces`` in worker processes (``toolctl serve --decode-workers N``).

In-process, a span request is decoded, turned into Arrow, redacted and its rows' canonical
JSON rendered in the server's thread pool (``collector.otlp.prepare_write``): ~75 µs of CPU a
span, most of it holding the GIL that the writer thread needs too. Here a worker process
does all of that and hands back Arrow IPC bytes; the server only reads them (zero-copy),
begins each row's sha256 (``toolctl.store.spans.begin_hashes``) and queues the write. The
writer thread stays the store's only writer: a worker never opens the store file (DuckDB
lets one process hold it). It renders the row JSON on an in-memory DuckDB of its own, with
the store's redaction rules and salt, given when the pool starts.

A worker that dies (killed, out of memory) breaks the pool: every request it had not
answered gets 503 with ``Retry-After`` (nothing of it was stored, so the exporter's retry
stores it once) and the next request starts a new pool. A worker exits when the server
does, even on ``kill -9`` (it watches its parent).
"""

from __future__ import annotations

import os
import threading
from typing import Any

#: SET takes no bound parameters, so the whole statement is a constant.
WORKER_DUCKDB_THREADS = "SET threads = 1"
#: How often a worker checks that the server that started it still runs (seconds).
PARENT_POLL_SECONDS = 1.0

# -- in the worker process --------------------------------------------------------------------
_STORE: Any = None


def _init_worker(rules: Any, salt: bytes, parent: int) -> None:
    """Worker start: ignore Ctrl-C (the server drains and stops the pool itself), follow
    the parent, open the in-memory connection the row JSON is rendered on."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:  # the parent killed (-9): no orphan keeps running
        import time

        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="toolctl-parent-watch", daemon=True).start()
    from toolctl.store import Store

    global _STORE
    _STORE = Store.scratch()  # the same session settings (TimeZone) as the store's connections
    # One thread: a 512-row statement gains nothing from more, and N workers share the cores.
    _STORE.execute(WORKER_DUCKDB_THREADS)
    _STORE.redaction_rules = rules
    _STORE.redaction_salt = salt


def _ipc(table: Any) -> bytes | None:
    import pyarrow as pa

    if table is None:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def prepare_in_worker(payload: bytes, encoding: str) -> tuple:
    """Decode, redact and render one request (runs in a worker). Returns ("ok", spans IPC,
    rejects IPC, redacted, rows IPC, open tail, keys, rejected spans, first reject) or
    ("bad", message, hint) for a payload that is no request (a 400)."""
    from collector.otlp import OTLPDecodeError, decode_request
    from toolctl.store.spans import prepare_span_rows

    try:
        batch = decode_request(payload, encoding)  # type: ignore[arg-type]
    except OTLPDecodeError as exc:  # as values: a ToolctlError need not survive pickling
        return ("bad", exc.message, exc.hint)
    spans = batch.to_arrow() if batch.rows else None
    rejects = batch.rejects_arrow() if batch.rejects else None
    spans, rejects, redacted, rows, open_tail = prepare_span_rows(_STORE, spans, rejects)
    keys = [(r[0], r[1]) for r in batch.rows]
    return ("ok", _ipc(spans), _ipc(rejects), redacted, _ipc(rows), open_tail, keys,
            batch.rejected_spans, batch.rejects[0][1] if batch.rejects else None)


def _ready() -> int:
    return os.getpid()


# -- in the server ----------------------------------------------------------------------------
class WorkerLostError(Exception):
    """A decoding worker died before answering: nothing of the request was stored."""


class DecodePool:
    """``workers`` processes doing ``/v1/traces``' request stage for the server."""

    def __init__(self, workers: int, *, rules: Any, salt: bytes):
        if workers < 1:
            raise ValueError("a decode pool needs at least one worker")
        self.workers = workers
        self._args = (rules, salt, os.getpid())
        self._lock = threading.Lock()
        self._executor: Any = None
        self._closed = False
        self.restarts = 0

    def start(self) -> None:
        """Start the workers now (not at the first request), in the background."""
        with self._lock:
            self._executor = self._new_executor()

    def _new_executor(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the server has threads and an open DuckDB database.
        executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=self._args)
        for _ in range(self.workers):  # each submit starts one worker (spawn starts them on demand)
            executor.submit(_ready)
        return executor

    def pids(self) -> list[int]:
        """The workers' process ids (for tests and /healthz)."""
        executor = self._executor
        return sorted(getattr(executor, "_processes", None) or {}) if executor is not None else []

    def submit(self, payload: bytes, encoding: str) -> tuple[Any, Any]:
        """Queue one request body; returns (future, the executor it went to). A pool already
        known to be broken (a worker died while idle) is replaced first: nothing was sent."""
        from concurrent.futures.process import BrokenProcessPool

        for _ in range(2):
            with self._lock:
                if self._closed:
                    raise WorkerLostError("the collector is shutting down")
                if self._executor is None:
                    self._executor = self._new_executor()
                executor = self._executor
            try:
                return executor.submit(prepare_in_worker, payload, encoding), executor
            except BrokenProcessPool:
                self._replace(executor)
        raise WorkerLostError("the decoding workers cannot be started")

    def _replace(self, broken: Any) -> None:
        """Drop a broken executor (once, whoever notices first); the next submit starts anew."""
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = None
            self.restarts += 1
        broken.shutdown(wait=False, cancel_futures=True)

    async def prepare(self, payload: bytes, encoding: str, *, source: str, kind: str) -> Any:
        """The request's ``SpanWrite``, prepared in a worker. Raises OTLPDecodeError for a
        payload that is no request, WorkerLostError if the worker died meanwhile."""
        import asyncio
        from concurrent.futures.process import BrokenProcessPool

        from starlette.concurrency import run_in_threadpool

        future, executor = self.submit(payload, encoding)
        try:
            result = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._replace(executor)
            raise WorkerLostError("a decoding worker stopped before answering") from None
        if result[0] == "bad":
            from collector.otlp import OTLPDecodeError

            raise OTLPDecodeError(result[1], hint=result[2])
        return await run_in_threadpool(write_from_worker, result, source, kind)

    def close(self) -> None:
        """Stop the workers (after the server's last request): waits for them to exit."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def write_from_worker(result: tuple, source: str, kind: str) -> Any:
    """A worker's answer as the ``SpanWrite`` the writer queue takes (runs in the server)."""
    import pyarrow as pa

    from collector.otlp import SpanWrite
    from toolctl.store.spans import begin_hashes

    _, spans, rejects, redacted, rows, open_tail, keys, rejected_spans, first_reject = result

    def table(data: bytes | None) -> Any:
        return None if data is None else pa.ipc.open_stream(pa.py_buffer(data)).read_all()

    prepared = begin_hashes(table(spans), table(rejects), redacted, table(rows), open_tail)
    return SpanWrite.from_prepared(prepared, keys=keys, rejected_spans=rejected_spans,
                                   first_reject=first_reject, source=source, kind=kind)
