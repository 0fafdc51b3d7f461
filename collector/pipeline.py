"""Ingest pipeline: sources → batches → the store, with exact accounting.

Every non-blank line ends up counted once as accepted, duplicate or rejected. Each batch
is one transaction (see ``toolctl.store.writer``), so an interrupted ingest can simply be
run again.
"""

from __future__ import annotations

import queue
import threading
import zlib
from typing import Any, Callable, Iterable, Iterator, TypeVar

from collector.parsers.jsonl import (DEFAULT_CHUNK_BYTES, LineBatch, input_ended, iter_line_batches,
                                     reason_line)
from collector.sources import (FORMAT_JSONL, OpenedSource, Source, expand_paths, open_source,
                               progress_callback, sniff_format)
from toolctl import profile
from toolctl.models import DEFAULT_MAX_LINE_BYTES, REJECT_RAW_CAP, IngestSummary
from toolctl.store import Store
from toolctl.store.writer import (BatchIds, export_parsed, parse_line_batch, record_source,
                                  store_line_batch, write_line_batch)

ProgressFn = Callable[[int, int | None], None]  # (bytes done, total bytes or None)
T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 1, *, waiting: str | None = None) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    An exception raised while producing an item is raised here, at that item's place in
    the sequence (what came before it has been consumed). When the consumer stops early
    (an error while storing a batch, or ``close()``), the producer stops at its next item.
    Memory: ``depth`` + 1 items are alive at most (one being consumed, ``depth`` ready).
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put((None, exc))
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # a generator's cleanup runs now, in this thread
                close()
        put((_DONE, None))

    worker = threading.Thread(target=produce, name="toolctl-prefetch", daemon=True)
    worker.start()
    # --profile: time the consumer spends waiting for the producer, named, when the
    # consumer is the main thread (the timeline is the main thread's).
    timed = waiting if profile.ENABLED and threading.current_thread() is threading.main_thread() else None
    try:
        while True:
            if timed is not None and ready.empty():
                with profile.phase(timed):
                    item, exc = ready.get()
            else:
                item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        # Done: the producer has finished. Stopped early: it ends at its next item; a read
        # blocked on a pipe (stdin) is not waited for (the thread is a daemon).
        worker.join(timeout=5)


def parse_ahead(store: Store, tables: Iterable[tuple[LineBatch, Any]], *,
                source: str) -> Iterator[tuple[LineBatch, Any]]:
    """Parse each (batch, raw table) on a companion connection; yields (batch, ParsedBatch).

    Run it under ``prefetch`` so parsing batch n+1 overlaps with the writer storing batch n
    (``store_line_batch``): validation is ~40% of an ingest's time and the insert, ledger
    digest and commit leave a core idle (measured in benchmarks/RESULTS.md). The rows'
    ledger hashes are computed here too (for ``source``), off the writer's path.
    """
    parser = store.companion(lossless_arrow=True)
    ids = BatchIds()
    try:
        for batch, table in tables:
            yield batch, export_parsed(parser, parse_line_batch(parser, table), source=source, ids=ids)
    finally:
        close = getattr(tables, "close", None)
        if close is not None:  # stop the reader now, not when the generator is collected
            close()
        parser.close()


def ingest_paths(
    store: Store,
    paths: list[str],
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Ingest files, directories (recursive) and ``-`` (stdin) into ``store``.

    Raises InputError before writing anything if a path does not exist. A source that
    breaks mid-way (a truncated gzip) keeps what was read and counts the break as one
    rejected line, so the run still accounts for everything.
    """
    sources = expand_paths(paths)
    on_bytes = progress_callback(sources, progress)

    summary = IngestSummary()
    with store.bulk_load():
        for source in sources:
            per = ingest_source(store, source, max_line_bytes=max_line_bytes,
                                chunk_bytes=chunk_bytes, on_bytes=on_bytes)
            add_source(summary, per)
    return summary


def add_source(summary: IngestSummary, per: dict) -> None:
    summary.files += 1
    summary.bytes += per["bytes"]
    for key in ("lines", "accepted", "duplicates", "rejected"):
        setattr(summary, key, getattr(summary, key) + per[key])
    summary.redacted += per.get("redacted", 0)
    summary.spans += per.get("spans", 0)
    summary.span_duplicates += per.get("span_duplicates", 0)
    summary.sources.append(per)


def ingest_source(store: Store, source: Source, *, max_line_bytes: int, chunk_bytes: int,
                  on_bytes: Callable[[int], None] | None = None) -> dict:
    """Ingest one source; returns its accounting (source, format, bytes, sha256, lines…)."""
    opened = open_source(source, on_bytes)
    fmt = sniff_format(opened.head)
    if fmt != FORMAT_JSONL:
        return ingest_otlp_source(store, source, opened, fmt)
    counts = {"lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "redacted": 0}
    last_line = 0

    def account(batch: LineBatch, result: Any) -> None:
        nonlocal last_line
        for key in counts:
            counts[key] += getattr(result, key)
        last_line = batch.first_line + batch.count - 1

    def write(batch: LineBatch, table: Any) -> None:
        account(batch, write_line_batch(store, table, source=source.name, kind=source.kind))

    batches = iter_line_batches(opened.stream, max_line_bytes=max_line_bytes,
                                chunk_bytes=chunk_bytes, raw_cap=REJECT_RAW_CAP)
    try:
        # Three stages at once, one batch apart (DuckDB releases the GIL while it works):
        # reading, decompressing, hashing and scanning chunk n+2; parsing, validating and
        # redacting batch n+1 on a second connection; inserting, digesting and committing
        # batch n on the store's own.
        tables = prefetch((b, b.to_arrow(REJECT_RAW_CAP)) for b in batches)
        for batch, parsed in prefetch(parse_ahead(store, tables, source=source.name),
                                      waiting="waiting for the parse thread"):
            account(batch, store_line_batch(store, parsed, source=source.name, kind=source.kind))
    except (EOFError, OSError, zlib.error) as exc:
        broken: Exception | None = exc
    else:
        broken = opened.error
    finally:
        opened.close()
    if broken is not None:
        # The stream broke (truncated or corrupt gzip): what came before is stored; the
        # break itself is accounted as one rejected line after the last one read.
        tail = reason_line(last_line + 1, input_ended(last_line, broken))
        write(tail, tail.to_arrow(REJECT_RAW_CAP))
    record_source(store, source=source.name, sha256=opened.counter.sha256.hexdigest(),
                  nbytes=opened.counter.nbytes, **counts)
    return {"source": source.name, "format": "jsonl", "bytes": opened.counter.nbytes,
            "sha256": opened.counter.sha256.hexdigest(), "compressed": opened.compressed, **counts}


def ingest_otlp_source(store: Store, source: Source, opened: OpenedSource, fmt: str) -> dict:
    """Ingest one OTLP file (see ``collector.otlp.ingest_otlp_file``).

    Accounting: ``spans`` / ``span_duplicates`` / ``tool_calls`` count spans; a refused
    span or document counts as one line that is rejected (``lines == rejected`` for an
    OTLP file), so ``accepted + duplicates + rejected == lines`` and exit code 3 hold
    across formats.
    """
    from collector.otlp import ingest_otlp_file

    try:
        result = ingest_otlp_file(store, opened.stream, fmt=fmt, source=source.name, kind=source.kind,
                                  stream_error=lambda: opened.error)
    finally:
        opened.close()
    counts, per = otlp_source_accounting(source, opened, fmt, spans=result.spans,
                                         duplicates=result.duplicates, tool_calls=result.tool_calls,
                                         rejected=result.rejected)
    record_source(store, source=source.name, sha256=per["sha256"], nbytes=per["bytes"], **counts)
    return per


def otlp_source_accounting(source: Source, opened: OpenedSource, fmt: str, *, spans: int,
                           duplicates: int, tool_calls: int, rejected: int) -> tuple[dict, dict]:
    """(the ``ingest_sources`` counts, the summary entry) of an OTLP file, ingested here or
    forwarded to ``toolctl serve``: a refused span or document counts as one rejected line."""
    counts = {"lines": rejected, "accepted": 0, "duplicates": 0, "rejected": rejected}
    return counts, {"source": source.name, "format": fmt, "bytes": opened.counter.nbytes,
                    "sha256": opened.counter.sha256.hexdigest(), "compressed": opened.compressed,
                    **counts, "spans": spans, "span_duplicates": duplicates, "tool_calls": tool_calls}
